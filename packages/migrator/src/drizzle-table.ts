import pg from "pg";
import type { Migration } from "./journal.js";
import type { AppliedRow } from "./plan.js";

/** Where drizzle-orm and drizzle-kit record applied migrations; both tools share it with us. */
export const DRIZZLE_SCHEMA = "drizzle";
export const DRIZZLE_TABLE = "__drizzle_migrations";

const table = `${pg.escapeIdentifier(DRIZZLE_SCHEMA)}.${pg.escapeIdentifier(DRIZZLE_TABLE)}`;

/** Creates drizzle's table exactly as drizzle-orm's migrator does, so the tools can take turns. */
export async function ensureDrizzleTable(client: pg.ClientBase): Promise<void> {
  const { rows } = await client.query<{ present: boolean }>("SELECT to_regclass($1) IS NOT NULL AS present", [
    `${DRIZZLE_SCHEMA}.${DRIZZLE_TABLE}`,
  ]);
  if (rows[0]?.present) return;
  await client.query(`CREATE SCHEMA IF NOT EXISTS ${pg.escapeIdentifier(DRIZZLE_SCHEMA)}`);
  await client.query(`CREATE TABLE IF NOT EXISTS ${table} (id SERIAL PRIMARY KEY, hash text NOT NULL, created_at bigint)`);
}

/** Drizzle's rows, oldest first; none when the table does not exist yet. */
export async function readApplied(client: pg.ClientBase): Promise<AppliedRow[]> {
  const { rows } = await client.query<{ present: boolean }>("SELECT to_regclass($1) IS NOT NULL AS present", [
    `${DRIZZLE_SCHEMA}.${DRIZZLE_TABLE}`,
  ]);
  if (!rows[0]?.present) return [];
  const result = await client.query<{ id: number; hash: string; created_at: string | null }>(
    `SELECT id, hash, created_at FROM ${table} ORDER BY created_at, id`,
  );
  return result.rows.map((row) => ({ id: row.id, hash: row.hash, createdAt: Number(row.created_at ?? 0) }));
}

/** Records `migration` as applied, in drizzle's format: the file's sha256 and the journal's `when`. */
export async function recordApplied(client: pg.ClientBase, migration: Migration): Promise<void> {
  await client.query(`INSERT INTO ${table} (hash, created_at) VALUES ($1, $2)`, [migration.hash, migration.when]);
}

/** Removes the record of `migration`, for a down migration. */
export async function forgetApplied(client: pg.ClientBase, migration: Pick<Migration, "hash" | "when">): Promise<void> {
  await client.query(`DELETE FROM ${table} WHERE hash = $1 AND created_at = $2`, [migration.hash, migration.when]);
}

/**
 * Hands the ids a rolled-back attempt took back to the next insert, so a run retried (after a
 * lock timeout, or to commit an enum value) numbers its rows as one straight run would. Safe
 * only under the migration lock: nobody else inserts meanwhile.
 */
export async function reuseRolledBackIds(client: pg.ClientBase): Promise<void> {
  await client.query(`SELECT setval(pg_get_serial_sequence($1, 'id'), coalesce(max(id), 0) + 1, false) FROM ${table}`, [
    `${pg.escapeIdentifier(DRIZZLE_SCHEMA)}.${pg.escapeIdentifier(DRIZZLE_TABLE)}`,
  ]);
}
