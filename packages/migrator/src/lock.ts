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
    const { rows } = await client.query<{ locked: boolean }>("SELECT pg_try_advisory_lock($1, $2) AS locked", [
      MIGRATION_LOCK_KEY.classId,
      MIGRATION_LOCK_KEY.objId,
    ]);
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
          hint: "another migration is running or stuck; see who holds it with `SELECT * FROM pg_stat_activity WHERE pid = <pid>` and raise --lock-wait-timeout, or end that session",
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

/** The session holding the migration lock, from `pg_locks` and `pg_stat_activity`. */
export async function lockHolder(client: pg.Client): Promise<LockHolder | undefined> {
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
