import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { CliRun, LogLine } from "../../packages/migrator/test/support/cli.js";
import type { TestDatabase } from "../support/database.js";

export const root = join(import.meta.dirname, "../..");
export const migrationsDir = join(root, "drizzle/migrations");
export const legacySqlFile = join(root, "docker/postgres/init.sql.deprecated");
/** The compiled `yomu-migrate` as its own process, the way Compose and the Job run it. */
export { type CliRun, runCli as yomuMigrate, withClient } from "../../packages/migrator/test/support/cli.js";

export function finished(run: CliRun): LogLine | undefined {
  return run.events.find((e) => e.event === "migration.run.finished");
}

/** Creates the schema the way the retired init.sql did, on one connection, as psql -f would. */
export async function loadLegacySchema(db: TestDatabase): Promise<void> {
  await db.query(readFileSync(legacySqlFile, "utf8"));
}

export { type Catalog, readCatalog } from "../support/catalog.js";

/**
 * Pairs of objects that do the same job twice: two indexes on the same table with the same keys,
 * order, uniqueness and predicate, or two foreign keys on the same columns to the same target.
 * Each pair is listed once, by name.
 */
export async function duplicates(db: TestDatabase): Promise<string[]> {
  const indexes = await db.query<{ pair: string }>(`
    SELECT a.indexrelid::regclass::text || ' = ' || b.indexrelid::regclass::text AS pair
    FROM pg_index a JOIN pg_index b ON a.indrelid = b.indrelid AND a.indexrelid < b.indexrelid
    WHERE a.indkey::text = b.indkey::text AND a.indoption::text = b.indoption::text
      AND a.indisunique = b.indisunique
      AND coalesce(pg_get_expr(a.indpred, a.indrelid), '') = coalesce(pg_get_expr(b.indpred, b.indrelid), '')
      AND coalesce(pg_get_expr(a.indexprs, a.indrelid), '') = coalesce(pg_get_expr(b.indexprs, b.indrelid), '')
      AND a.indrelid IN (SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public')`);
  const foreignKeys = await db.query<{ pair: string }>(`
    SELECT a.conname || ' = ' || b.conname AS pair
    FROM pg_constraint a JOIN pg_constraint b ON a.conrelid = b.conrelid AND a.oid < b.oid
    WHERE a.contype = 'f' AND b.contype = 'f' AND a.conkey = b.conkey AND a.confrelid = b.confrelid AND a.confkey = b.confkey`);
  return [...indexes.rows, ...foreignKeys.rows].map((r) => r.pair).sort();
}
