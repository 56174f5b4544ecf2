import pg from "pg";
import { DRIZZLE_SCHEMA } from "./drizzle-table.js";
import { MIGRATION_LOCK_KEY } from "./lock.js";

/** One row per run, in drizzle's schema beside its migrations table. */
export const HISTORY_TABLE = "migration_runs";

const table = `${pg.escapeIdentifier(DRIZZLE_SCHEMA)}.${pg.escapeIdentifier(HISTORY_TABLE)}`;

/** `down` is a run of `yomu-migrate down`; its `applied` column lists the tags it rolled back. */
export type RunStatus = "running" | "applied" | "noop" | "failed" | "crashed" | "down";

export interface HistoryRow {
  runId: string;
  startedAt: Date;
  finishedAt: Date | null;
  durationMs: number | null;
  status: RunStatus;
  fromVersion: string | null;
  toVersion: string | null;
  applied: string[];
  error: string | null;
  errorCode: string | null;
  host: string | null;
  appVersion: string | null;
  lockWaitMs: number | null;
}

/**
 * Readies the history for a run that holds the migration lock, in one round trip: creates the
 * table if it is missing, then marks runs still `running` as `crashed` and returns how many.
 * Only a lock holder writes `running` rows, so once we hold the lock every such row belongs to a
 * runner that died (SIGKILL, OOM, a lost node).
 */
export async function takeOverHistory(client: pg.ClientBase): Promise<number> {
  // One simple-protocol string: PostgreSQL reads each statement's tables only when it reaches it,
  // so the UPDATE finds the table the DO block may just have made.
  const results = (await client.query(
    `${createIfMissing}; UPDATE ${table} SET status = 'crashed', error = 'the runner stopped without finishing (killed or lost its connection)', finished_at = now() WHERE status = 'running'`,
  )) as unknown as pg.QueryResult[];
  return results.at(-1)?.rowCount ?? 0;
}

/**
 * Creates the history table when it is missing, also for a run that never got the migration lock
 * (it timed out on a fresh database) and must still leave its row. Concurrent `CREATE TABLE IF
 * NOT EXISTS` can fail on PostgreSQL's catalog unique index, so creators queue on a
 * transaction-scoped advisory lock of their own (the migration lock's key with objid 2). Only a
 * missing table runs `CREATE SCHEMA`, which needs the CREATE privilege on the database even when
 * the schema exists.
 */
const createIfMissing = `DO $yomu$ BEGIN
  IF to_regclass(${pg.escapeLiteral(`${DRIZZLE_SCHEMA}.${HISTORY_TABLE}`)}) IS NULL THEN
    PERFORM pg_advisory_xact_lock(${MIGRATION_LOCK_KEY.classId}, 2);
    CREATE SCHEMA IF NOT EXISTS ${pg.escapeIdentifier(DRIZZLE_SCHEMA)};
    CREATE TABLE IF NOT EXISTS ${table} (
      run_id uuid PRIMARY KEY,
      started_at timestamptz NOT NULL,
      finished_at timestamptz,
      duration_ms integer,
      status text NOT NULL CHECK (status IN ('running', 'applied', 'noop', 'failed', 'crashed', 'down')),
      from_version text,
      to_version text,
      applied text[] NOT NULL DEFAULT '{}',
      error text,
      error_code text,
      host text,
      app_version text,
      lock_wait_ms integer
    );
    CREATE INDEX IF NOT EXISTS migration_runs_started_at_idx ON ${table} (started_at DESC);
  END IF;
END $yomu$`;

/**
 * Writes a run's final row and reads the run counts back, in one transaction whose bounds are its
 * own (`SET LOCAL`): the run's timeouts may be what failed it, or be off, and a session that a
 * transaction pooler shares must not keep settings the run made. One round trip and one commit,
 * the row's values written as literals: a no-op run pays for every round trip.
 */
export async function writeFinalRow(client: pg.ClientBase, row: HistoryRow): Promise<RunSummary> {
  // The summary reads the table as it was before this statement's insert: the run's own row is
  // taken from the insert instead, so the counts include it once, in its final status.
  const values = literals(row);
  const sql = [
    "BEGIN",
    "SET LOCAL lock_timeout = 5000",
    "SET LOCAL statement_timeout = 10000",
    createIfMissing,
    `WITH saved AS (${upsertRun(values.join(", "))} RETURNING status, finished_at)
     SELECT status, count(*) AS count, max(finished_at) AS last_finished
       FROM (SELECT status, finished_at FROM ${table} WHERE run_id <> ${values[0]} UNION ALL SELECT status, finished_at FROM saved) AS runs
      GROUP BY status`,
    "COMMIT",
  ].join(";\n");
  try {
    const results = (await client.query(sql)) as unknown as pg.QueryResult<SummaryRow>[];
    return summaryOf(results[4]?.rows ?? []);
  } catch (error) {
    await client.query("ROLLBACK").catch(() => {});
    throw error;
  }
}

/** The row as SQL literals, in the table's column order: quoted by pg's own escaping. */
function literals(row: HistoryRow): string[] {
  const text = (v: string | null) => (v === null ? "NULL" : pg.escapeLiteral(v));
  const int = (v: number | null) => (v === null ? "NULL" : String(Math.trunc(Number(v))));
  const time = (v: Date | null) => (v === null ? "NULL" : `${pg.escapeLiteral(v.toISOString())}::timestamptz`);
  return [
    `${pg.escapeLiteral(row.runId)}::uuid`,
    time(row.startedAt),
    time(row.finishedAt),
    int(row.durationMs),
    text(row.status),
    text(row.fromVersion),
    text(row.toVersion),
    `ARRAY[${row.applied.map((t) => pg.escapeLiteral(t)).join(", ")}]::text[]`,
    text(row.error),
    text(row.errorCode),
    text(row.host),
    text(row.appVersion),
    int(row.lockWaitMs),
  ];
}

const existsQuery = `SELECT to_regclass(${pg.escapeLiteral(`${DRIZZLE_SCHEMA}.${HISTORY_TABLE}`)}) IS NOT NULL AS present`;

async function historyExists(client: pg.ClientBase): Promise<boolean> {
  const { rows } = await client.query<{ present: boolean }>(existsQuery);
  return Boolean(rows[0]?.present);
}

const upsertRun = (
  values: string,
) => `INSERT INTO ${table} (run_id, started_at, finished_at, duration_ms, status, from_version, to_version, applied, error, error_code, host, app_version, lock_wait_ms)
     VALUES (${values})
     ON CONFLICT (run_id) DO UPDATE SET finished_at = EXCLUDED.finished_at, duration_ms = EXCLUDED.duration_ms,
       status = EXCLUDED.status, from_version = EXCLUDED.from_version, to_version = EXCLUDED.to_version,
       applied = EXCLUDED.applied, error = EXCLUDED.error, error_code = EXCLUDED.error_code, lock_wait_ms = EXCLUDED.lock_wait_ms`;

function runValues(row: HistoryRow): unknown[] {
  return [
    row.runId,
    row.startedAt,
    row.finishedAt,
    row.durationMs,
    row.status,
    row.fromVersion,
    row.toVersion,
    row.applied,
    row.error,
    row.errorCode,
    row.host,
    row.appVersion,
    row.lockWaitMs,
  ];
}

/** Writes a run's row; an existing row (the `running` one) is replaced with the final state. */
export async function saveRun(client: pg.ClientBase, row: HistoryRow): Promise<void> {
  await client.query(upsertRun("$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13"), runValues(row));
}

type SummaryRow = { status: string; count: string; last_finished: Date | null };

export interface RunSummary {
  /** Runs by status over the whole history: the success and failure counts. */
  counts: Record<string, number>;
  lastSuccessAt: Date | null;
}

function summaryOf(rows: SummaryRow[]): RunSummary {
  const successes = rows.filter((r) => (r.status === "applied" || r.status === "noop") && r.last_finished);
  const lastSuccessAt = successes.reduce<Date | null>((a, r) => (a && a >= (r.last_finished as Date) ? a : r.last_finished), null);
  return { counts: Object.fromEntries(rows.map((r) => [r.status, Number(r.count)])), lastSuccessAt };
}

/** The newest runs, newest first. */
export async function recentRuns(client: pg.ClientBase, limit = 10): Promise<HistoryRow[]> {
  if (!(await historyExists(client))) return [];
  const { rows } = await client.query(`SELECT * FROM ${table} ORDER BY started_at DESC LIMIT $1`, [limit]);
  return rows.map((r) => ({
    runId: r.run_id,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    durationMs: r.duration_ms,
    status: r.status,
    fromVersion: r.from_version,
    toVersion: r.to_version,
    applied: r.applied,
    error: r.error,
    errorCode: r.error_code,
    host: r.host,
    appVersion: r.app_version,
    lockWaitMs: r.lock_wait_ms,
  }));
}
