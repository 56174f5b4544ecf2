import type { TestDatabase } from "./database.js";

export interface Catalog {
  columns: string[];
  constraints: string[];
  indexes: string[];
  types: string[];
}

/**
 * The user-visible schema of `public`, as PostgreSQL itself prints it, for comparing two databases.
 * Read from the catalog rather than pg_dump, which refuses a server newer than itself.
 *
 * @example
 *   expect(await readCatalog(db)).toEqual(await readCatalog(reference));
 */
export async function readCatalog(db: TestDatabase): Promise<Catalog> {
  const rows = async (sql: string) => (await db.query<{ line: string }>(sql)).rows.map((r) => r.line).sort();
  return {
    columns: await rows(`
      SELECT c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
        || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
        || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '') AS line
      FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
      WHERE n.nspname = 'public' AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped`),
    // contype 'n': PostgreSQL 18 records each NOT NULL as a constraint; `columns` already shows it.
    constraints: await rows(`
      SELECT conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(c.oid) AS line
      FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
      WHERE n.nspname = 'public' AND c.conrelid <> 0 AND c.contype <> 'n'`),
    indexes: await rows(`SELECT indexdef AS line FROM pg_indexes WHERE schemaname = 'public'`),
    types: await rows(`
      SELECT t.typname || ' ' || string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) AS line
      FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid JOIN pg_namespace n ON n.oid = t.typnamespace
      WHERE n.nspname = 'public' GROUP BY t.typname`),
  };
}
