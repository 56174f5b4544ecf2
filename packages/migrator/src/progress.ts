import pg from "pg";
import type { Blocker, EventSink } from "./events.js";
import type { Migration } from "./journal.js";

/** Where a run is: the migration and statement running now, for progress and failure reports. */
export interface Position {
  tag: string;
  file: string;
  /** 1-based. */
  statement: number;
}

export interface ProgressOptions {
  /** Where a second connection reads `pg_stat_activity` while the run's own is busy. */
  connection: pg.ClientConfig;
  /** The run's backend, whose statement is watched. */
  pid: number;
  onEvent: EventSink;
  intervalMs: number;
}

export interface Progress {
  /** The applier's `onStatement` hook: call before a statement, and the returned function after it. */
  onStatement(migration: Migration, index: number): () => void;
  /** The statement running now, or the last one that ran. */
  position(): Position | undefined;
  close(): Promise<void>;
}

/**
 * Says what a run is doing while it does it: `migration.started` as each migration begins, and
 * every `intervalMs` while one statement runs, `migration.progress` with what the statement
 * waits on and who blocks it (`pg_blocking_pids`): the question an operator asks first when a
 * deploy hangs. The second connection is opened only once a statement outlasts one interval.
 *
 * @example const progress = watchProgress({ connection: { connectionString: url }, pid, onEvent, intervalMs: 10_000 });
 */
export function watchProgress(options: ProgressOptions): Progress {
  let current: Position | undefined;
  let watcher: Promise<pg.Client | undefined> | undefined;
  const connectWatcher = () => {
    watcher ??= (async () => {
      const client = new pg.Client({
        ...options.connection,
        application_name: "yomu-migrate progress",
        connectionTimeoutMillis: 5_000,
      });
      client.on("error", () => {});
      try {
        await client.connect();
        return client;
      } catch {
        return undefined;
      }
    })();
    return watcher;
  };

  const report = async (position: Position, elapsedMs: number) => {
    const client = await connectWatcher();
    const seen = client ? await observe(client, options.pid).catch(() => undefined) : undefined;
    const blockers = seen?.blockers ?? [];
    const waiting = seen?.waitEvent ? `, waiting on ${seen.waitEvent}` : "";
    const blocked = blockers.length
      ? `, blocked by ${blockers.map((b) => `pid ${b.pid}${b.applicationName ? ` (${b.applicationName})` : ""}${b.queryStart ? ` since ${b.queryStart}` : ""}`).join(", ")}`
      : "";
    options.onEvent({
      event: "migration.progress",
      severity: blockers.length ? "WARNING" : "INFO",
      message: `${position.tag}: statement ${position.statement} still running after ${Math.round(elapsedMs / 1000)}s${waiting}${blocked}`,
      tag: position.tag,
      statement: position.statement,
      elapsedMs,
      waitEvent: seen?.waitEvent ?? null,
      blockedBy: blockers.map((b) => b.pid),
      blockers,
    });
  };

  return {
    onStatement(migration, index) {
      const position = { tag: migration.tag, file: migration.file, statement: index + 1 };
      const first = index === 0 || current?.tag !== migration.tag;
      current = position;
      if (first) {
        options.onEvent({
          event: "migration.started",
          severity: "INFO",
          message: `applying ${migration.tag} (${migration.statements.length} statement(s))`,
          tag: migration.tag,
          statements: migration.statements.length,
        });
      }
      const started = performance.now();
      let busy = false;
      const timer = setInterval(() => {
        if (busy) return;
        busy = true;
        report(position, Math.round(performance.now() - started)).finally(() => {
          busy = false;
        });
      }, options.intervalMs);
      timer.unref();
      return () => clearInterval(timer);
    },
    position: () => current,
    async close() {
      const client = await watcher;
      await client?.end().catch(() => {});
    },
  };
}

async function observe(client: pg.Client, pid: number): Promise<{ waitEvent: string | null; blockers: Blocker[] }> {
  const { rows } = await client.query<{ wait_event_type: string | null; wait_event: string | null; blocked_by: number[] }>(
    "SELECT wait_event_type, wait_event, pg_blocking_pids(pid) AS blocked_by FROM pg_stat_activity WHERE pid = $1",
    [pid],
  );
  const row = rows[0];
  if (!row) return { waitEvent: null, blockers: [] };
  const waitEvent = row.wait_event ? `${row.wait_event_type}:${row.wait_event}` : null;
  if (row.blocked_by.length === 0) return { waitEvent, blockers: [] };
  const blockers = await client.query<{
    pid: number;
    application_name: string | null;
    state: string | null;
    started: Date | null;
  }>(
    // An idle-in-transaction blocker's query is its last one; when its transaction began says more.
    // The query text is left out: another session's SQL may carry secrets.
    `SELECT pid, application_name, state, CASE WHEN state LIKE 'idle in transaction%' THEN xact_start ELSE query_start END AS started
       FROM pg_stat_activity WHERE pid = ANY($1::int[]) ORDER BY pid`,
    [row.blocked_by],
  );
  return {
    waitEvent,
    blockers: blockers.rows.map((b) => ({
      pid: b.pid,
      applicationName: b.application_name || null,
      state: b.state,
      queryStart: b.started ? b.started.toISOString() : null,
    })),
  };
}
