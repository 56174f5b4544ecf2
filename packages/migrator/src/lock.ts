import type pg from "pg";
import { sleep } from "./connection.js";
import { MigratorError } from "./errors.js";
import type { EventSink } from "./log.js";

/**
 * The advisory lock every yomu-migrate process takes before it reads or changes the schema, in
 * PostgreSQL's two-int4 form so `pg_locks` shows it as classid/objid: 0x796f6d75 is "yomu" in
 * ASCII, 1 is "schema migrations". Anything else that migrates this database (a hand-run
 * script, a second tool) must take the same lock: `SELECT pg_advisory_lock(2037345653, 1)`
 * (0x796f6d75 in decimal).
 */
export const MIGRATION_LOCK_KEY = { classId: 0x796f6d75, objId: 1 } as const;

export interface LockHolder {
  pid: number;
  applicationName: string;
  /** When the holder's session started, ISO 8601. */
  since: string | null;
  clientAddr: string | null;
  state: string | null;
}

export interface LockOptions {
  /** Give up (exit 3) after waiting this long, in ms. */
  waitTimeoutMs: number;
  onEvent: EventSink;
  signal?: AbortSignal;
  /** How often to ask again, in ms; also how often a waiter reports who holds the lock. */
  pollMs?: number;
  reportEveryMs?: number;
  /**
   * The backend this session started on. A lock attempt that lands on another backend (a
   * transaction-pooling proxy handed the statement to a shared server connection) is refused
   * without taking the lock, so no lock is left behind on a connection the run does not own.
   */
  sessionPid?: number;
}

/**
 * Runs `fn` while this session holds the migration lock, and releases it in `finally`. Waits up
 * to `waitTimeoutMs`, logging who holds it; a crashed holder's lock is freed by PostgreSQL when
 * its session ends, so there is nothing to clean up by hand.
 *
 * @example
 *   await withAdvisoryLock(client, { waitTimeoutMs: 300_000, onEvent }, async () => applyAll());
 */
export async function withAdvisoryLock<T>(client: pg.Client, options: LockOptions, fn: (waitMs: number) => Promise<T>): Promise<T> {
  const waitMs = await acquire(client, options);
  try {
    return await fn(waitMs);
  } finally {
    // A broken connection has already lost the lock with its session.
    await client.query("SELECT pg_advisory_unlock($1, $2)", [MIGRATION_LOCK_KEY.classId, MIGRATION_LOCK_KEY.objId]).catch(() => {});
  }
}

async function acquire(client: pg.Client, options: LockOptions): Promise<number> {
  const started = Date.now();
  const pollMs = options.pollMs ?? 200;
  const reportEveryMs = options.reportEveryMs ?? 10_000;
  let lastReport = -Infinity;
  for (;;) {
    const { rows } = await client.query<{ locked: boolean | null; pid: number }>(
      "SELECT CASE WHEN $3::int IS NULL OR pg_backend_pid() = $3 THEN pg_try_advisory_lock($1, $2) END AS locked, pg_backend_pid() AS pid",
      [MIGRATION_LOCK_KEY.classId, MIGRATION_LOCK_KEY.objId, options.sessionPid ?? null],
    );
    if (rows[0]?.locked === null) throw sessionMoved(options.sessionPid as number, rows[0].pid);
    const waited = Date.now() - started;
    if (rows[0]?.locked) {
      options.onEvent({
        event: "migration.lock.acquired",
        severity: "INFO",
        message: `migration lock acquired after ${waited}ms`,
        waitMs: waited,
      });
      return waited;
    }
    if (options.signal?.aborted) {
      throw new MigratorError("INTERRUPTED", "interrupted while waiting for the migration lock");
    }
    const holder = waited - lastReport >= reportEveryMs || waited >= options.waitTimeoutMs ? await lockHolder(client) : undefined;
    if (waited >= options.waitTimeoutMs) {
      throw new MigratorError(
        "LOCK_TIMEOUT",
        `gave up waiting for the migration lock after ${Math.round(waited / 1000)}s${holder ? `; held by pid ${holder.pid} (${holder.applicationName || "no application_name"})` : ""}`,
        {
          details: { waitMs: waited, holder },
          hint: holder
            ? `another migration is running or stuck; see it with \`SELECT * FROM pg_stat_activity WHERE pid = ${holder.pid}\`, then wait (raise --lock-wait-timeout) or end that session with \`SELECT pg_terminate_backend(${holder.pid})\``
            : "the lock was freed just as the wait ended; run again",
        },
      );
    }
    if (holder) {
      lastReport = waited;
      options.onEvent({
        event: "migration.lock.waiting",
        severity: "NOTICE",
        message: `waiting for the migration lock held by pid ${holder.pid} (${holder.applicationName || "no application_name"})`,
        pid: holder.pid,
        applicationName: holder.applicationName,
        since: holder.since,
        clientAddr: holder.clientAddr,
        state: holder.state,
        waitedMs: waited,
      });
    }
    await sleep(Math.min(pollMs, Math.max(1, options.waitTimeoutMs - waited)), options.signal);
  }
}

/** The message every "this is not one session" refusal shares, so operators find one fix. */
export const POOLED_HINT =
  "connect directly to PostgreSQL, or through a pooler in session mode (PgBouncer pool_mode = session): a transaction pooler hands each statement to any server connection, so the advisory lock and the session settings do not stay with the run";

function sessionMoved(expected: number, actual: number): MigratorError {
  return new MigratorError(
    "POOLED_CONNECTION",
    `the connection does not stay one database session: it started on backend ${expected} and the next statement ran on backend ${actual} (a transaction-pooling proxy); nothing was applied`,
    { details: { expectedPid: expected, actualPid: actual }, hint: POOLED_HINT },
  );
}

/**
 * Refuses a session that lost the lock it just took: the statement after the lock ran on a
 * backend that does not hold it, or on another backend than the one the session started on.
 */
export async function assertHoldsLock(client: pg.Client, sessionPid: number): Promise<void> {
  const { rows } = await client.query<{ pid: number; holds: boolean }>(
    `SELECT pg_backend_pid() AS pid, EXISTS (
       SELECT 1 FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'advisory' AND granted
          AND classid = $1 AND objid = $2 AND objsubid = 2) AS holds`,
    [MIGRATION_LOCK_KEY.classId, MIGRATION_LOCK_KEY.objId],
  );
  const row = rows[0];
  if (!row) return;
  if (row.pid !== sessionPid) throw sessionMoved(sessionPid, row.pid);
  if (!row.holds) {
    throw new MigratorError(
      "POOLED_CONNECTION",
      `the connection does not stay one database session: backend ${row.pid} does not hold the migration lock this session took; nothing was applied`,
      { details: { pid: row.pid }, hint: POOLED_HINT },
    );
  }
}

/** The session holding the migration lock, from `pg_locks` and `pg_stat_activity`. */
async function lockHolder(client: pg.Client): Promise<LockHolder | undefined> {
  const { rows } = await client.query<{
    pid: number;
    application_name: string;
    backend_start: Date | null;
    client_addr: string | null;
    state: string | null;
  }>(
    `SELECT a.pid, a.application_name, a.backend_start, host(a.client_addr) AS client_addr, a.state
       FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
      WHERE l.locktype = 'advisory' AND l.granted
        AND l.classid = $1 AND l.objid = $2 AND l.objsubid = 2
        AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
    [MIGRATION_LOCK_KEY.classId, MIGRATION_LOCK_KEY.objId],
  );
  const row = rows[0];
  if (!row) return undefined;
  return {
    pid: row.pid,
    applicationName: row.application_name,
    since: row.backend_start ? row.backend_start.toISOString() : null,
    clientAddr: row.client_addr,
    state: row.state,
  };
}
