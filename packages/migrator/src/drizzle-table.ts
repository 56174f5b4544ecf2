import pg from "pg";
import { MigratorError } from "./errors.js";
import type { Migration } from "./journal.js";
import type { AppliedRow } from "./plan.js";

/** Where drizzle-orm and drizzle-kit record applied migrations; both tools share it with us. */
export const DRIZZLE_SCHEMA = "drizzle";
export const DRIZZLE_TABLE = "__drizzle_migrations";

const table = `${pg.escapeIdentifier(DRIZZLE_SCHEMA)}.${pg.escapeIdentifier(DRIZZLE_TABLE)}`;

/**
 * Creates drizzle's table exactly as drizzle-orm's migrator does, so the tools can take turns:
 * drizzle-orm 0.x's three columns for a journal, 1.0's five for its folder layout. A 0.x table
 * met with 1.0's layout is upgraded in place as drizzle-orm 1.0 upgrades it (see upgradeNames).
 */
export async function ensureDrizzleTable(client: pg.ClientBase, migrations: readonly Migration[] = []): Promise<void> {
  const byName = migrations.some((m) => m.name !== undefined);
  const columns = await tableColumns(client);
  if (columns === undefined) {
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${pg.escapeIdentifier(DRIZZLE_SCHEMA)}`);
    await client.query(
      byName
        ? `CREATE TABLE IF NOT EXISTS ${table} (id SERIAL PRIMARY KEY, hash text NOT NULL, created_at bigint, name text, applied_at timestamp with time zone DEFAULT now())`
        : `CREATE TABLE IF NOT EXISTS ${table} (id SERIAL PRIMARY KEY, hash text NOT NULL, created_at bigint)`,
    );
    return;
  }
  if (!byName || columns.has("name")) return;
  const rows = await readApplied(client);
  const { names, unmatched } = upgradeNames(rows, migrations);
  if (unmatched.length > 0) {
    throw new MigratorError(
      "JOURNAL_INVALID",
      `${DRIZZLE_SCHEMA}.${DRIZZLE_TABLE} records ${unmatched.length} migration(s) (ids ${unmatched.map((r) => r.id).join(", ")}) that match no folder here, so its upgrade to drizzle-orm 1.0's format (a name per row) cannot be done; nothing was applied`,
      { hint: "run from a checkout that has every migration this database has applied (drizzle-orm 1.0's migrator refuses the same way)" },
    );
  }
  await client.query("BEGIN");
  try {
    await client.query(`ALTER TABLE ${table} ADD COLUMN IF NOT EXISTS name text`);
    await client.query(`ALTER TABLE ${table} ADD COLUMN IF NOT EXISTS applied_at timestamp with time zone DEFAULT now()`);
    // applied_at NULL, as drizzle-orm 1.0 leaves it: when these rows were applied is not known.
    for (const [row, name] of names) await client.query(`UPDATE ${table} SET name = $1, applied_at = NULL WHERE id = $2`, [name, row.id]);
    await client.query("COMMIT");
  } catch (error) {
    await client.query("ROLLBACK").catch(() => {});
    throw error;
  }
}

/**
 * drizzle-orm 1.0's in-place upgrade of a 0.x table, as a pure match of each recorded row to a
 * folder: by created_at truncated to the second (1.0's folder names keep seconds), by hash among
 * several folders of that second, else by hash alone. Used both to upgrade the table and to read
 * a table not upgraded yet (status, verify) as drizzle-orm 1.0 would see it.
 */
export function upgradeNames(
  rows: readonly AppliedRow[],
  migrations: readonly Migration[],
): { names: Map<AppliedRow, string>; unmatched: AppliedRow[] } {
  const local = [...migrations].sort((a, b) => (a.when !== b.when ? a.when - b.when : (a.name ?? "").localeCompare(b.name ?? "")));
  const bySecond = new Map<number, Migration[]>();
  const byHash = new Map<string, Migration>();
  for (const m of local) {
    bySecond.set(m.when, [...(bySecond.get(m.when) ?? []), m]);
    byHash.set(m.hash, m);
  }
  const names = new Map<AppliedRow, string>();
  const unmatched: AppliedRow[] = [];
  for (const row of rows) {
    // String surgery, not Math.floor, to truncate exactly as drizzle-orm 1.0 does.
    const text = String(row.createdAt);
    const second = Number(`${text.substring(0, text.length - 3)}000`);
    const candidates = bySecond.get(second);
    const matched =
      candidates?.length === 1
        ? candidates[0]
        : candidates && candidates.length > 1
          ? candidates.find((c) => c.hash === row.hash)
          : byHash.get(row.hash);
    if (matched?.name !== undefined) names.set(row, matched.name);
    else unmatched.push(row);
  }
  return { names, unmatched };
}

/**
 * Drizzle's rows, oldest first; none when the table does not exist yet. `name` is undefined on a
 * drizzle-orm 0.x table (no such column) and null on a row a 0.x tool wrote into a 1.0 table.
 */
export async function readApplied(client: pg.ClientBase): Promise<AppliedRow[]> {
  const columns = await tableColumns(client);
  if (columns === undefined) return [];
  const hasName = columns.has("name");
  const result = await client.query<{ id: number; hash: string; created_at: string | null; name?: string | null }>(
    `SELECT id, hash, created_at${hasName ? ", name" : ""} FROM ${table} ORDER BY created_at, id`,
  );
  return result.rows.map((row) => ({
    id: row.id,
    hash: row.hash,
    createdAt: Number(row.created_at ?? 0),
    ...(hasName ? { name: row.name ?? null } : {}),
  }));
}

/**
 * Records `migration` as applied, in drizzle's format: the file's sha256 and its `when`, and for
 * drizzle-kit 1.0's layout its folder name (applied_at takes the column's default, now()).
 */
export async function recordApplied(client: pg.ClientBase, migration: Migration): Promise<void> {
  await client.query(recordAppliedSql(migration));
}

/**
 * The statement `recordApplied` runs, as text with its values quoted, so it can travel in one
 * message with the migration's own statements.
 */
export function recordAppliedSql(migration: Pick<Migration, "hash" | "when" | "name">): string {
  const hash = pg.escapeLiteral(migration.hash);
  const when = pg.escapeLiteral(String(migration.when));
  return migration.name !== undefined
    ? `INSERT INTO ${table} (hash, created_at, name) VALUES (${hash}, ${when}, ${pg.escapeLiteral(migration.name)})`
    : `INSERT INTO ${table} (hash, created_at) VALUES (${hash}, ${when})`;
}

/** Removes the record of `migration`, for a down migration. */
export async function forgetApplied(client: pg.ClientBase, migration: Pick<Migration, "hash" | "when" | "name">): Promise<void> {
  if (migration.name !== undefined) await client.query(`DELETE FROM ${table} WHERE name = $1`, [migration.name]);
  else await client.query(`DELETE FROM ${table} WHERE hash = $1 AND created_at = $2`, [migration.hash, migration.when]);
}

/** The table's column names, or undefined when it does not exist. */
async function tableColumns(client: pg.ClientBase): Promise<Set<string> | undefined> {
  const { rows } = await client.query<{ present: boolean; columns: string[] | null }>(
    `SELECT to_regclass($1) IS NOT NULL AS present,
            (SELECT array_agg(attname::text) FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped) AS columns`,
    [`${DRIZZLE_SCHEMA}.${DRIZZLE_TABLE}`],
  );
  if (!rows[0]?.present) return undefined;
  return new Set(rows[0].columns ?? []);
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
