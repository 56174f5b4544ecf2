// The one path every command that changes the schema takes (up and down), kept in one file so
// the order (connect, check, set up, lock, work, record, release, report) reads top to bottom.
import { randomUUID } from "node:crypto";
import pg from "pg";
import {
  connect,
  type DatabaseTarget,
  describeTarget,
  isConnectionLost,
  type Opened,
  openDatabase,
  secondConnection,
} from "./connection.js";
import { MigratorError } from "./errors.js";
import type { EventSink, RunCommand } from "./events.js";
import { type HistoryRow, type RunStatus, saveRun, takeOverHistory, writeFinalRow } from "./history.js";
import { assertHoldsLock, withAdvisoryLock } from "./lock.js";
import { checkOneSession } from "./pooler.js";
import { type Progress, watchProgress } from "./progress.js";
import { report } from "./report.js";

export interface SessionSettings {
  command: RunCommand;
  /** A URL the run connects to, or a client it borrows: used as it is, left as it was found, never ended. */
  target: DatabaseTarget;
  dir: string;
  onEvent: EventSink;
  host: string;
  appVersion: string | undefined;
  signal: AbortSignal | undefined;
  lockWaitTimeoutMs: number;
  /** 0 is PostgreSQL's "off": allowed when asked for explicitly, and warned about. */
  lockTimeoutMs: number;
  statementTimeoutMs: number;
  connectTimeoutMs: number;
  slowThresholdMs: number;
  progressIntervalMs: number;
}

/** The dedicated session a command works in, under the migration lock. */
export interface Session {
  client: pg.Client;
  /** The backend pid the whole run stays on. */
  pid: number;
  runId: string;
  progress: Progress;
  /**
   * Writes the run's `running` row, so a runner killed from here on is marked `crashed` by the
   * next one. Called just before the first change: a run that changes nothing writes one row,
   * its final one. Idempotent.
   */
  markRunning(): Promise<void>;
}

/** What a command's work did, typed; the history row, the events and the exit code read it. */
export interface WorkOutcome {
  /** Whether drizzle's table was read: without it the versions below say nothing. */
  schemaRead: boolean;
  fromVersion: string | null;
  schemaVersion: string | null;
  /** Tags applied (up) or rolled back (down) and committed by this run, in order. */
  changed: string[];
  /** Whether any change was tried; false for a refusal (a plan problem, a missing down file). */
  attempted: boolean;
  /** A no-transaction file that failed after some of its statements took effect. */
  partial?: { tag: string; statementsDone: number };
  error?: MigratorError;
}

/** A finished run of `up` or `down`: what its events, its history row and its exit code say. */
export interface RunRecord {
  runId: string;
  command: RunCommand;
  status: "applied" | "rolled-back" | "noop" | "failed";
  startedAt: Date;
  durationMs: number;
  lockWaitMs: number | null;
  /** Time spent working after the lock was granted; null when it never was. */
  applyMs: number | null;
  fromVersion: string | null;
  schemaVersion: string | null;
  schemaRead: boolean;
  changed: string[];
  /** Whether any change was tried; false when the run stopped before (a refusal, a timeout). */
  attempted: boolean;
  /** Applying took longer than the slow threshold (waiting for the lock does not count). */
  slow: boolean;
  /** Runs by status over the whole history table, this one included; empty if it could not be read. */
  runCounts: Record<string, number>;
  /** When the newest successful run finished, from the history table. */
  lastSuccessAt: Date | null;
  error?: MigratorError;
}

const notRead: WorkOutcome = { schemaRead: false, fromVersion: null, schemaVersion: null, changed: [], attempted: false };

/**
 * Runs `work` on one dedicated session under the migration lock and records the run before the
 * lock is released. `work` may instead be the error that stopped the command before it could
 * start (a broken journal): the run still connects to leave its row in the history.
 *
 * @example const record = await runSession(settings, async (session) => applyPending(session));
 */
export async function runSession(
  settings: SessionSettings,
  work: ((session: Session) => Promise<WorkOutcome>) | MigratorError,
): Promise<RunRecord> {
  const { onEvent, command } = settings;
  const wanted = sessionValues(settings);
  const runId = randomUUID();
  const startedAt = new Date();
  const started = performance.now();
  const database = describeTarget(settings.target);
  const elsewhere = secondConnection(settings.target);
  onEvent({
    event: "migration.run.started",
    severity: "INFO",
    message: `${command === "up" ? "migrating" : "rolling back"} ${database} from ${settings.dir}`,
    runId,
    command,
    database,
    dir: settings.dir,
    host: settings.host,
  });
  if (settings.lockTimeoutMs === 0)
    warnOff(onEvent, "lock-timeout", "statements may queue behind a long transaction, and live traffic behind them");
  if (settings.statementTimeoutMs === 0)
    warnOff(onEvent, "statement-timeout", "a statement may run, and hold its locks, for as long as it likes");

  let opened: Opened | undefined;
  let client: pg.Client | undefined;
  let restore: (() => Promise<void>) | undefined;
  let progress: Progress | undefined;
  let stopCancelling = () => {};
  let phase = "connecting to the database";
  let lockWaitMs: number | null = null;
  let applyStarted: number | undefined;
  let applyMs: number | null = null;
  let outcome: WorkOutcome = notRead;
  let summary: { counts: Record<string, number>; lastSuccessAt: Date | null } | undefined;
  // Fixed once, when the run is recorded: the row, the events and the metrics show the same figures.
  let final: Omit<RunRecord, "runCounts" | "lastSuccessAt"> | undefined;
  const finish = (): Omit<RunRecord, "runCounts" | "lastSuccessAt"> => {
    const durationMs = Math.round(performance.now() - started);
    return {
      runId,
      command,
      status: outcome.error ? "failed" : outcome.changed.length > 0 ? (command === "up" ? "applied" : "rolled-back") : "noop",
      startedAt,
      durationMs,
      lockWaitMs,
      applyMs,
      fromVersion: outcome.fromVersion,
      schemaVersion: outcome.schemaVersion,
      schemaRead: outcome.schemaRead,
      changed: outcome.changed,
      attempted: outcome.attempted,
      slow: applyMs !== null && applyMs > settings.slowThresholdMs,
      error: outcome.error,
    };
  };
  const settle = (error: unknown, so: WorkOutcome): MigratorError => {
    const where = phase === "applying" ? applyingAt(progress, command) : phase;
    return describeFailure(error, client, where, command, so);
  };

  try {
    opened = await openDatabase(settings.target, {
      applicationName: `yomu-migrate${command === "up" ? "" : ` ${command}`} ${settings.host}`.slice(0, 63),
      settings: wanted,
      // A run that already failed connects only to leave its row: no long wait for that.
      timeoutMs: work instanceof MigratorError ? Math.min(settings.connectTimeoutMs, 5_000) : settings.connectTimeoutMs,
      onEvent,
      signal: settings.signal,
    });
    client = opened.client;
    if (work instanceof MigratorError) {
      outcome = { ...notRead, error: work };
    } else {
      const session = client;
      phase = "session set-up";
      const identity = await checkOneSession(session, elsewhere, { settings: Object.keys(wanted) });
      const { pid } = identity;
      stopCancelling = cancelOnAbort(pid, elsewhere, settings.signal);
      const changed = await configureSession(session, wanted, identity);
      // A borrowed session gets its own values back once the run is done with it.
      if (opened.borrowed) restore = () => restoreSettings(session, changed, identity.settings);
      progress = watchProgress({ connection: elsewhere, pid, onEvent, intervalMs: settings.progressIntervalMs });
      const sessionProgress = progress;
      phase = "the wait for the migration lock";
      await withAdvisoryLock(
        session,
        { waitTimeoutMs: settings.lockWaitTimeoutMs, onEvent, signal: settings.signal, sessionPid: pid },
        async (waitMs) => {
          lockWaitMs = waitMs;
          phase = "session set-up";
          // A direct connection is its own session: no proxy can have moved the next statement.
          if (!identity.direct) await assertHoldsLock(session, pid);
          const crashed = await takeOverHistory(session);
          if (crashed > 0) {
            onEvent({
              event: "migration.history.crashed",
              severity: "WARNING",
              message: `${crashed} earlier run(s) never finished (killed or cut off mid-run); what their open transactions held was rolled back by PostgreSQL`,
              runs: crashed,
            });
          }
          let running: Promise<void> | undefined;
          const markRunning = () => {
            running ??= saveRun(session, historyRow({ ...finish(), status: "failed" }, settings, "running"));
            return running;
          };
          phase = "applying";
          applyStarted = performance.now();
          const done = await work({ client: session, pid, runId, progress: sessionProgress, markRunning });
          applyMs = Math.round(performance.now() - applyStarted);
          outcome = done.error ? { ...done, error: settle(done.error, done) } : done;
          // Recorded while the lock is still held: the next runner reads a finished row, never ours as `running`.
          phase = "recording the run";
          final = finish();
          summary = await record(session, final, settings);
        },
      );
    }
  } catch (error) {
    if (applyStarted !== undefined && applyMs === null) applyMs = Math.round(performance.now() - applyStarted);
    outcome = { ...outcome, error: outcome.error ?? settle(error, outcome) };
  }
  stopCancelling();
  await progress?.close();
  if (!final || final.error !== outcome.error) {
    final = finish();
    if (client) summary = await record(client, final, settings);
  }
  if (client && !isConnectionLost(undefined, client)) await restore?.().catch(() => {});
  await opened?.release();
  const result: RunRecord = { ...final, runCounts: summary?.counts ?? {}, lastSuccessAt: summary?.lastSuccessAt ?? null };
  report(result, settings);
  return result;
}

/**
 * Writes the run's final row, outside any migration transaction so a failed run's row survives
 * the rollback. When the run's own session is gone, a fresh connection writes it.
 */
async function record(
  client: pg.Client,
  run: Omit<RunRecord, "runCounts" | "lastSuccessAt">,
  settings: SessionSettings,
): Promise<{ counts: Record<string, number>; lastSuccessAt: Date | null } | undefined> {
  let writer = client;
  try {
    if (isConnectionLost(undefined, client)) {
      writer = await connect({
        url: secondConnection(settings.target),
        applicationName: "yomu-migrate history",
        timeoutMs: 5_000,
        onEvent: () => {},
      });
    }
    return await writeFinalRow(writer, historyRow(run, settings, historyStatus(run)));
  } catch (error) {
    settings.onEvent({
      event: "migration.history.unsaved",
      severity: "WARNING",
      message: `could not record this run in the history table: ${(error as Error).message}`,
      runId: run.runId,
      error: (error as Error).message,
    });
    return undefined;
  } finally {
    if (writer !== client) await writer.end().catch(() => {});
  }
}

function historyStatus(run: Pick<RunRecord, "status">): RunStatus {
  return run.status === "rolled-back" ? "down" : run.status;
}

function historyRow(run: Omit<RunRecord, "runCounts" | "lastSuccessAt">, settings: SessionSettings, status: RunStatus): HistoryRow {
  const finished = status !== "running";
  return {
    runId: run.runId,
    startedAt: run.startedAt,
    finishedAt: finished ? new Date(run.startedAt.getTime() + run.durationMs) : null,
    durationMs: finished ? run.durationMs : null,
    status,
    fromVersion: run.fromVersion,
    toVersion: run.schemaVersion,
    applied: run.changed,
    error: finished && run.error ? run.error.message : null,
    errorCode: finished && run.error ? run.error.code : null,
    host: settings.host,
    appVersion: settings.appVersion ?? null,
    lockWaitMs: run.lockWaitMs,
  };
}

function warnOff(onEvent: EventSink, setting: "lock-timeout" | "statement-timeout", risk: string): void {
  onEvent({ event: "migration.timeout.off", severity: "WARNING", message: `--${setting} is off: ${risk}`, setting });
}

function applyingAt(progress: Progress | undefined, command: RunCommand): string {
  const at = progress?.position();
  if (!at) return command === "up" ? "applying" : "rolling back";
  return `statement ${at.statement} of ${at.tag}`;
}

/** Turns whatever stopped the run into the error it reports, naming a lost connection as one. */
function describeFailure(
  error: unknown,
  client: pg.Client | undefined,
  where: string,
  command: RunCommand,
  outcome: WorkOutcome,
): MigratorError {
  const known = error instanceof MigratorError ? error : undefined;
  if (known && known.code !== "MIGRATION_FAILED" && known.code !== "DOWN_UNAVAILABLE" && known.code !== "INTERRUPTED") return known;
  const verb = command === "up" ? "applied" : "rolled back";
  const left = [
    ...(outcome.changed.length ? [`${outcome.changed.join(", ")} ${verb}`] : []),
    ...(outcome.partial
      ? [
          `statements 1-${outcome.partial.statementsDone} of ${outcome.partial.tag} (a no-transaction file) in effect, the file not recorded`,
        ]
      : []),
  ];
  const leftText = left.length ? left.join(" and ") : `nothing ${verb}`;
  if (known?.code !== "INTERRUPTED" && client && isConnectionLost(error, client)) {
    const cause = rootMessage(error);
    return new MigratorError(
      "CONNECTION_LOST",
      `the connection to the database was lost during ${where}: ${cause}; this run left ${leftText}`,
      {
        cause: error,
        details: { ...(known?.details ?? {}), changed: outcome.changed },
        hint: "what was in an open transaction was rolled back; run again once the database is reachable (the Job retries exit 7)",
      },
    );
  }
  if (known) return known;
  const sqlstate = (error as { code?: unknown })?.code;
  // Anything PostgreSQL did not say is a bug of ours: exit 8, naming what failed.
  if (typeof sqlstate !== "string") {
    return new MigratorError("INTERNAL", `internal error during ${where}: ${rootMessage(error)}; this run left ${leftText}`, {
      cause: error,
    });
  }
  return new MigratorError(
    "MIGRATION_FAILED",
    `${command} failed during ${where}: ${rootMessage(error)} (SQLSTATE ${sqlstate}); this run left ${leftText}`,
    {
      cause: error,
      details: { sqlstate },
      hint:
        sqlstate === "57014"
          ? "a statement ran past --statement-timeout: something held a lock the run needed; find it in pg_stat_activity, or raise --statement-timeout"
          : undefined,
    },
  );
}

function rootMessage(error: unknown): string {
  const known = error instanceof MigratorError ? error : undefined;
  const detail = known?.details.error;
  return typeof detail === "string" ? detail : String((error as Error)?.message ?? error);
}

/** The session settings every run works under, as pg_settings shows them (ms, unitless). */
function sessionValues(settings: { lockTimeoutMs: number; statementTimeoutMs: number }): Record<string, string> {
  return {
    lock_timeout: String(Math.trunc(settings.lockTimeoutMs)),
    statement_timeout: String(Math.trunc(settings.statementTimeoutMs)),
    // PostgreSQL 14+: notice a vanished client (a killed pod) during a long statement, roll back
    // and free the lock within a second instead of when the statement ends.
    client_connection_check_interval: "1000",
  };
}

/**
 * Sets what the startup packet did not (a URL with its own `options` replaces ours). Behind a
 * proxy every setting is set again: the startup packet was the proxy's to forward, refuse or
 * drop, and what a shared server connection shows may be another client's. A setting this
 * server lacks (absent from what was read) is skipped.
 */
async function configureSession(
  client: pg.Client,
  wanted: Record<string, string>,
  session: { direct: boolean; settings: Record<string, string> },
): Promise<string[]> {
  const set: string[] = [];
  for (const [name, value] of Object.entries(wanted)) {
    if (!(name in session.settings) || (session.direct && session.settings[name] === value)) continue;
    await client.query(`SET ${name} = ${value}`);
    set.push(name);
  }
  return set;
}

async function restoreSettings(client: pg.Client, names: string[], before: Record<string, string>): Promise<void> {
  if (names.length === 0) return;
  await client.query("SELECT set_config(name, value, false) FROM unnest($1::text[], $2::text[]) AS s(name, value)", [
    names,
    names.map((n) => before[n] ?? ""),
  ]);
}

/** On abort, cancels whatever the session's backend runs, from a second connection. */
function cancelOnAbort(pid: number, connection: pg.ClientConfig, signal: AbortSignal | undefined): () => void {
  if (!signal) return () => {};
  const cancel = () => {
    const other = new pg.Client({ ...connection, application_name: "yomu-migrate cancel", connectionTimeoutMillis: 5000 });
    other.on("error", () => {});
    other
      .connect()
      .then(() => other.query("SELECT pg_cancel_backend($1)", [pid]))
      .catch(() => {})
      .finally(() => other.end().catch(() => {}));
  };
  signal.addEventListener("abort", cancel, { once: true });
  return () => signal.removeEventListener("abort", cancel);
}
