import pg from "pg";

/** What `seedTables` did: rows per table it filled, and every table it could not fill, with why. */
export interface SeedResult {
  /** `schema.table` → rows inserted. */
  seeded: Map<string, number>;
  skipped: Array<{ table: string; reason: string }>;
}

interface Column {
  name: string;
  type: string;
  typtype: string;
  category: string;
  typname: string;
  baseType: string | null;
  notNull: boolean;
  hasDefault: boolean;
  identity: string;
  generated: string;
  typmod: number;
}

interface Table {
  oid: string;
  name: string;
  columns: Column[];
  foreignKeys: Array<{ columns: string[]; refOid: string; refColumns: string[] }>;
}

/**
 * Fills every ordinary table in a scratch database with `rows` generated rows, read from the
 * catalog alone so it works on any schema: referenced tables first, foreign keys pointing at
 * rows that exist, values unique per row (so unique indexes hold), defaults left to the
 * database. A table whose constraints the generated rows break is skipped and named.
 *
 * @example
 *   const { skipped } = await seedTables(client, 10_000);
 *   for (const s of skipped) console.log(`${s.table} not seeded: ${s.reason}`);
 */
export async function seedTables(client: pg.ClientBase, rows: number): Promise<SeedResult> {
  const tables = await readTables(client);
  const result: SeedResult = { seeded: new Map(), skipped: [] };
  const counts = new Map<string, number>();
  for (const table of dependencyOrder(tables)) {
    const insert = insertFor(table, rows, tables, counts);
    if (typeof insert !== "string") {
      result.skipped.push({ table: table.name, reason: insert.reason });
      continue;
    }
    try {
      const { rowCount } = await client.query(insert);
      counts.set(table.oid, rowCount ?? 0);
      result.seeded.set(table.name, rowCount ?? 0);
    } catch (error) {
      result.skipped.push({ table: table.name, reason: (error as Error).message });
    }
  }
  return result;
}

async function readTables(client: pg.ClientBase): Promise<Table[]> {
  // Partitions are filled through their parent; drizzle's own bookkeeping schema is left alone.
  const { rows: tables } = await client.query<{ oid: string; name: string }>(
    `SELECT c.oid::text AS oid, format('%I.%I', n.nspname, c.relname) AS name
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
        AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'drizzle') AND n.nspname NOT LIKE 'pg\\_%'
      ORDER BY 2`,
  );
  const { rows: columns } = await client.query<Column & { oid: string }>(
    `SELECT a.attrelid::text AS oid, a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type,
            t.typtype, t.typcategory AS category, t.typname,
            CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END AS "baseType",
            a.attnotnull AS "notNull", a.atthasdef AS "hasDefault", a.attidentity AS identity,
            a.attgenerated AS generated, a.atttypmod AS typmod
       FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
      WHERE a.attrelid = ANY($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
      ORDER BY a.attrelid, a.attnum`,
    [tables.map((t) => t.oid)],
  );
  const { rows: keys } = await client.query<{ oid: string; refOid: string; columns: string[]; refColumns: string[] }>(
    `SELECT k.conrelid::text AS oid, k.confrelid::text AS "refOid",
            array(SELECT attname::text FROM unnest(k.conkey) WITH ORDINALITY u(n, i)
                    JOIN pg_attribute ON attrelid = k.conrelid AND attnum = u.n ORDER BY i) AS columns,
            array(SELECT attname::text FROM unnest(k.confkey) WITH ORDINALITY u(n, i)
                    JOIN pg_attribute ON attrelid = k.confrelid AND attnum = u.n ORDER BY i) AS "refColumns"
       FROM pg_constraint k WHERE k.contype = 'f' AND k.conrelid = ANY($1::oid[])`,
    [tables.map((t) => t.oid)],
  );
  return tables.map((t) => ({
    ...t,
    columns: columns.filter((c) => c.oid === t.oid),
    foreignKeys: keys.filter((k) => k.oid === t.oid),
  }));
}

/** Referenced tables before the tables that reference them; a cycle's tables come last, as found. */
function dependencyOrder(tables: Table[]): Table[] {
  const done = new Set<string>();
  const order: Table[] = [];
  let progress = true;
  while (progress) {
    progress = false;
    for (const table of tables) {
      if (done.has(table.oid)) continue;
      if (table.foreignKeys.every((k) => k.refOid === table.oid || done.has(k.refOid) || !tables.some((t) => t.oid === k.refOid))) {
        done.add(table.oid);
        order.push(table);
        progress = true;
      }
    }
  }
  return [...order, ...tables.filter((t) => !done.has(t.oid))];
}

function insertFor(table: Table, rows: number, tables: Table[], counts: Map<string, number>): string | { reason: string } {
  const targets: string[] = [];
  const values: string[] = [];
  const joins: string[] = [];
  const fromKey = new Map<string, string>();
  table.foreignKeys.forEach((key, i) => {
    const referenced = tables.find((t) => t.oid === key.refOid);
    const count = counts.get(key.refOid) ?? 0;
    if (!referenced || key.refOid === table.oid || count === 0) return;
    const alias = `fk${i}`;
    const cols = key.refColumns.map((c) => pg.escapeIdentifier(c)).join(", ");
    // Row g points at referenced row 1 + (g - 1) mod count: every reference exists.
    joins.push(
      `JOIN (SELECT row_number() OVER () AS rn, ${cols} FROM ${referenced.name}) ${alias} ON ${alias}.rn = 1 + (g.g - 1) % ${count}`,
    );
    key.columns.forEach((column, j) => {
      fromKey.set(column, `${alias}.${pg.escapeIdentifier(key.refColumns[j] as string)}`);
    });
  });
  for (const column of table.columns) {
    if (column.generated || column.identity) continue;
    const referenced = fromKey.get(column.name);
    if (referenced) {
      targets.push(pg.escapeIdentifier(column.name));
      values.push(referenced);
      continue;
    }
    const dangling = table.foreignKeys.some((k) => k.columns.includes(column.name));
    if (column.hasDefault && !dangling) continue;
    const value = dangling ? null : valueFor(column);
    if (value === null) {
      if (column.notNull) {
        return {
          reason: dangling
            ? `column ${column.name} references a table with no rows`
            : `no generated value for NOT NULL column ${column.name} of type ${column.type}`,
        };
      }
      continue;
    }
    targets.push(pg.escapeIdentifier(column.name));
    values.push(value);
  }
  return `INSERT INTO ${table.name} (${targets.join(", ")}) SELECT ${values.join(", ")} FROM generate_series(1, ${Math.trunc(rows)}) AS g(g) ${joins.join(" ")}`;
}

/** A value expression in `g` (the row number) for a column, or null when there is no sensible one. */
function valueFor(column: Column): string | null {
  // format_type() output is already a quoted, schema-qualified type name where it needs to be.
  const cast = column.type;
  if (column.typtype === "e") return `(enum_range(NULL::${cast}))[1 + g.g % cardinality(enum_range(NULL::${cast}))]`;
  if (column.typtype === "d" && column.baseType) {
    const base = valueFor({ ...column, typtype: "b", type: column.baseType, typname: column.baseType.replace(/\(.*$/, "") });
    return base === null ? null : `(${base})::${cast}`;
  }
  switch (column.category) {
    case "N":
      if (column.typname === "int2") return "(g.g % 32000)::int2";
      // numeric(p, s) may hold only a few digits.
      if (column.typname === "numeric" && column.typmod > 0) return `(g.g % 10)::${cast}`;
      return `g.g::${cast}`;
    case "S":
      return `('r' || g.g)::${cast}`;
    case "B":
      return "(g.g % 2 = 0)";
    case "D":
      return `(timestamp '2026-01-01' + g.g * interval '1 second')::${cast}`;
    case "T":
      return `(g.g * interval '1 second')::${cast}`;
    case "I":
      return `('10.' || (g.g / 65536) % 256 || '.' || (g.g / 256) % 256 || '.' || g.g % 256)::${cast}`;
    case "A":
      return `'{}'::${cast}`;
    case "U":
      if (column.typname === "uuid") return "md5(g.g::text)::uuid";
      if (column.typname === "json" || column.typname === "jsonb") return `json_build_object('n', g.g)::${cast}`;
      if (column.typname === "bytea") return "convert_to(g.g::text, 'UTF8')";
      return null;
    default:
      return null;
  }
}
