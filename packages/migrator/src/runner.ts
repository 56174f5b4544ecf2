import { hostname } from "node:os";
import { type AppliedMigration, applyRun, type PreparedRun, prepareRun } from "./applier.js";
import { messageCharacters } from "./apply-batch.js";
import type { DatabaseTarget } from "./connection.js";
import { defaults } from "./defaults.js";
import { ensureDrizzleTable, readApplied } from "./drizzle-table.js";
import { MigratorError } from "./errors.js";
import type { EventSink } from "./events.js";
import { type Migration, readMigrationFolder, reportJournalWarnings } from "./journal.js";
import { assertApplicableSize } from "./migration-file.js";
import { type Plan, type PlanProblem, planMigrations, versionAfter } from "./plan.js";
import { type RunRecord, runSession, type Session, type SessionSettings, type WorkOutcome } from "./session.js";

export { defaults } from "./defaults.js";

/** `databaseUrl`, or a connected `client` of the caller's: used as it is and never ended. */
export interface RunOptions extends DatabaseTarget {
  /** Folder drizzle-kit generates (holds `meta/_journal.json`). */
  dir: string;
  onEvent?: EventSink;
  /** Waits this long for another runner's lock before giving up (exit 3). Default 300s. */
  lockWaitTimeoutMs?: number;
  /** `lock_timeout` for each statement; 0 is off (warned about). Default 250ms. */
  lockTimeoutMs?: number;
  /** Retries after a statement hits `lock_timeout`. Default 10. */
  lockRetries?: number;
  /** First pause before such a retry; doubles each time, up to 5s. Default 500ms. */
  lockRetryDelayMs?: number;
  /** `statement_timeout` for each statement; 0 is off (warned about). Default 10m. */
  statementTimeoutMs?: number;
  /** How long to keep retrying an unreachable database. Default 60s. */
  connectTimeoutMs?: number;
  /** Applying (not waiting for the lock) slower than this emits `migration.slow`. Default 30s. */
  slowThresholdMs?: number;
  /** How often a running statement reports `migration.progress`. Default 10s. */
  progressIntervalMs?: number;
  allowOutOfOrder?: boolean;
  /** Where the run comes from, for `pg_stat_activity` and the history: the pod's name in Kubernetes. */
  host?: string;
  /** Version of the build that ships these migrations, recorded in the history. */
  appVersion?: string;
  /** Aborting cancels the running statement, rolls back and releases the lock. */
  signal?: AbortSignal;
  /** Applies only the shipped migrations this accepts: a scratch copy of what another database has. */
  include?: (migration: Migration) => boolean;
}

export type MigrationStatus = "applied" | "already-applied" | "pending" | "failed" | "rolled-back";

export interface RunResult extends Omit<RunRecord, "status" | "changed" | "command"> {
  status: "applied" | "noop" | "failed";
  /** Tags applied by this run, in order. */
  applied: string[];
  /** Every migration this build ships, with what happened to it in this run. */
  migrations: Array<{ tag: string; status: MigrationStatus; durationMs?: number }>;
}

/** What applying the plan did: the tags done, and the failure with where it happened. */
interface Applied {
  done: AppliedMigration[];
  failure?: { error: unknown; tag: string | undefined; rolledBack: string[]; transactional: boolean; statementsDone: number };
}

/**
 * Applies pending migrations exactly once, however many runners start at once: under the
 * advisory lock, on one dedicated connection, atomically per batch. Never throws for a failed
 * migration; the result says what happened to each migration and carries the error.
 *
 * @example
 *   const result = await runMigrations({ databaseUrl, dir: "drizzle/migrations", onEvent: log });
 *   if (result.error) process.exitCode = result.error.exitCode;
 */
export async function runMigrations(options: RunOptions): Promise<RunResult> {
  const settings = sessionSettings(options, "up");
  let shipped: Migration[] | MigratorError;
  try {
    const folder = readMigrationFolder(options.dir);
    reportJournalWarnings(folder.warnings, settings.onEvent);
    shipped = options.include ? folder.migrations.filter(options.include) : folder.migrations;
  } catch (error) {
    shipped = error instanceof MigratorError ? error : new MigratorError("JOURNAL_INVALID", String((error as Error)?.message ?? error));
  }
  if (shipped instanceof MigratorError) return toResult(await runSession(settings, shipped), [], undefined, { done: [] });

  const migrations = shipped;
  let plan: Plan | undefined;
  let applied: Applied = { done: [] };
  const record = await runSession(settings, async (session) => {
    plan = planMigrations(migrations, await readApplied(session.client), { allowOutOfOrder: options.allowOutOfOrder });
    applied = await applyPlan(session, plan, migrations, options);
    return outcomeOf(plan, applied);
  });
  return toResult(record, migrations, plan, applied);
}

async function applyPlan(session: Session, plan: Plan, migrations: readonly Migration[], options: RunOptions): Promise<Applied> {
  const onEvent = options.onEvent ?? (() => {});
  if (plan.problems.length > 0 || plan.pending.length === 0) return { done: [] };
  await session.markRunning();
  const done: AppliedMigration[] = [];
  let prepared: PreparedRun | undefined;
  try {
    for (const migration of plan.pending) assertApplicableSize(migration);
    // The parser is loaded here, and only here: a run with nothing pending never pays for it.
    prepared = await prepareRun(plan.pending, { statements: "facts" });
    onEvent({
      event: "migration.plan",
      severity: "INFO",
      message: `${plan.pending.length} pending migration(s) in ${prepared.batches.length} batch(es)`,
      pending: plan.pending.map((m) => m.tag),
      batches: prepared.batches.map((b) => ({
        transactional: b.transactional,
        ownTransactions: b.ownTransactions,
        tags: b.migrations.map((m) => m.tag),
      })),
    });
    await ensureDrizzleTable(session.client, migrations);
    await applyRun(session.client, prepared, {
      onEvent,
      lockTimeoutMs: options.lockTimeoutMs ?? defaults.lockTimeoutMs,
      lockRetries: options.lockRetries ?? defaults.lockRetries,
      retryDelayMs: options.lockRetryDelayMs ?? defaults.lockRetryDelayMs,
      signal: options.signal,
      onStatement: session.progress.onStatement,
      messageCharacters: await messageCharacters(session.client),
      onApplied: (batchDone) => {
        for (const m of batchDone) {
          done.push(m);
          onEvent({
            event: "migration.applied",
            severity: "NOTICE",
            message: `applied ${m.tag} in ${m.durationMs}ms`,
            tag: m.tag,
            durationMs: m.durationMs,
          });
        }
      },
    });
  } catch (error) {
    const at = session.progress.position();
    const details = error instanceof MigratorError ? error.details : {};
    const tag = typeof details.tag === "string" ? details.tag : at?.tag;
    const batch = prepared?.batches.find((b) => b.migrations.some((m) => m.tag === tag));
    const rolledBack = Array.isArray(details.rolledBack) ? details.rolledBack.map(String) : [];
    return {
      done,
      failure: {
        error,
        tag,
        rolledBack,
        transactional: batch ? batch.transactional && !batch.ownTransactions : true,
        statementsDone: at && at.tag === tag ? at.statement - 1 : 0,
      },
    };
  }
  return { done };
}

function outcomeOf(plan: Plan, applied: Applied): WorkOutcome {
  const tags = applied.done.map((m) => m.tag);
  const appliedNow = new Set(tags);
  const failure = applied.failure;
  return {
    schemaRead: true,
    fromVersion: plan.schemaVersion,
    schemaVersion: versionAfter({ ...plan, pending: plan.pending.filter((m) => appliedNow.has(m.tag)) }),
    changed: tags,
    attempted: plan.problems.length === 0 && plan.pending.length > 0,
    partial:
      failure && !failure.transactional && failure.tag && failure.statementsDone > 0
        ? { tag: failure.tag, statementsDone: failure.statementsDone }
        : undefined,
    error: plan.problems.length > 0 ? planError(plan.problems) : failure ? (failure.error as MigratorError) : undefined,
  };
}

function toResult(record: RunRecord, migrations: readonly Migration[], plan: Plan | undefined, applied: Applied): RunResult {
  const { changed, command: _command, ...rest } = record;
  const durations = new Map(applied.done.map((m) => [m.tag, m.durationMs]));
  const already = new Set(plan?.applied.map((a) => a.migration.tag));
  const failure = applied.failure;
  const statusOf = (tag: string): MigrationStatus => {
    if (durations.has(tag)) return "applied";
    if (already.has(tag)) return "already-applied";
    if (failure?.tag === tag) return "failed";
    if (failure?.rolledBack.includes(tag)) return "rolled-back";
    return "pending";
  };
  return {
    ...rest,
    status: record.status === "rolled-back" ? "applied" : record.status,
    applied: changed,
    migrations: migrations.map((m) => {
      const durationMs = durations.get(m.tag);
      return durationMs === undefined ? { tag: m.tag, status: statusOf(m.tag) } : { tag: m.tag, status: statusOf(m.tag), durationMs };
    }),
  };
}

/** The settings every run shares, from a command's options and the one set of defaults. */
export function sessionSettings(
  options: Omit<RunOptions, "dir" | "include" | "allowOutOfOrder" | "lockRetries" | "lockRetryDelayMs"> & { dir: string },
  command: SessionSettings["command"],
): SessionSettings {
  return {
    command,
    target: { databaseUrl: options.databaseUrl, client: options.client },
    dir: options.dir,
    onEvent: options.onEvent ?? (() => {}),
    host: options.host ?? hostname(),
    appVersion: options.appVersion,
    signal: options.signal,
    lockWaitTimeoutMs: options.lockWaitTimeoutMs ?? defaults.lockWaitTimeoutMs,
    lockTimeoutMs: options.lockTimeoutMs ?? defaults.lockTimeoutMs,
    statementTimeoutMs: options.statementTimeoutMs ?? defaults.statementTimeoutMs,
    connectTimeoutMs: options.connectTimeoutMs ?? defaults.connectTimeoutMs,
    slowThresholdMs: options.slowThresholdMs ?? defaults.slowThresholdMs,
    progressIntervalMs: options.progressIntervalMs ?? defaults.progressIntervalMs,
  };
}

function planError(problems: PlanProblem[]): MigratorError {
  const lines = problems.map((p) =>
    p.kind === "checksum"
      ? `${p.migration.file} was changed after it was applied (recorded sha256 ${p.recordedHash.slice(0, 12)}…, file ${p.migration.hash.slice(0, 12)}…)`
      : `${p.migration.file} is older than the newest applied migration ${p.newestApplied.tag ?? `(created_at ${p.newestApplied.when})`} and would be skipped by drizzle`,
  );
  const checksum = problems.some((p) => p.kind === "checksum");
  const first = problems[0];
  return new MigratorError(checksum ? "CHECKSUM_MISMATCH" : "OUT_OF_ORDER", `${lines.join("; ")}; nothing was applied`, {
    details: { problems: lines, tag: first?.migration.tag, file: first?.migration.file },
    hint: checksum
      ? "restore the applied file from git and put the change in a new migration"
      : "regenerate the migration so it sorts last (drizzle-kit generate), or pass --allow-out-of-order once you have checked it is independent of the newer ones",
  });
}
