/**
 * Every event the migrator emits, keyed by `event`: the one source for their names and fields.
 * The logger prints them, metrics and tests read them, and a library user narrows on `event`.
 * A module that adds an event adds its fields here, so `up` and `down` cannot drift apart.
 */

import type { Finding } from "./lint.js";
import type { LockPlan, PlannedStatement } from "./lock-plan.js";

/** Cloud Logging severity names, in order. */
export type Severity = "DEBUG" | "INFO" | "NOTICE" | "WARNING" | "ERROR" | "CRITICAL";

/** The command a run belongs to: `up` and `down` share the run events and the history row. */
export type RunCommand = "up" | "down";

/** A session blocking a running migration statement, from `pg_blocking_pids`. */
export interface Blocker {
  pid: number;
  applicationName: string | null;
  state: string | null;
  /** When the blocker's current query (or transaction, when idle in one) started, ISO 8601. */
  queryStart: string | null;
}

/** The fields of each event, by name. */
export interface MigratorEvents {
  "migration.run.started": { runId: string; command: RunCommand; database: string; dir: string; host: string };
  "migration.db.waiting": { attempt: number; error: string };
  "migration.timeout.off": { setting: "lock-timeout" | "statement-timeout" };
  "migration.lock.waiting": {
    pid: number;
    applicationName: string;
    since: string | null;
    clientAddr: string | null;
    state: string | null;
    waitedMs: number;
  };
  "migration.lock.acquired": { waitMs: number };
  "migration.history.crashed": { runs: number };
  "migration.history.unsaved": { runId: string; error: string };
  "migration.plan": { pending: string[]; batches: Array<{ transactional: boolean; ownTransactions: boolean; tags: string[] }> };
  /** A file with BEGIN ... COMMIT blocks of its own runs alone; it is not atomic as a whole. */
  "migration.transactions.own": { tag: string; file: string; line: number | undefined };
  /** A commit after `commitAfter`, whose new enum value `tag` uses (PostgreSQL needs it, 55P04). */
  "migration.enum.split": { tag: string | undefined; commitAfter: string | undefined };
  /** Something drizzle applies (or skips) without a word that deserves one: a BOM, `when` going back, an idx gap, an empty or stray file. */
  "migration.journal.warning": { code: string; tags: string[] };
  "migration.started": { tag: string; statements: number };
  "migration.progress": {
    tag: string;
    /** 1-based index of the running statement in its file. */
    statement: number;
    elapsedMs: number;
    /** `wait_event_type:wait_event` from `pg_stat_activity`; null while it runs on CPU. */
    waitEvent: string | null;
    blockedBy: number[];
    blockers: Blocker[];
  };
  "migration.lock_timeout.retry": {
    tag: unknown;
    statement: unknown;
    attempt: number;
    retries: number;
    delayMs: number;
  };
  "migration.index.invalid_dropped": { tag: string; index: string };
  "migration.applied": { tag: string; durationMs: number };
  "migration.rolled_back": { tag: string };
  "migration.interrupted": { signal: string };
  "migration.failed": {
    command: RunCommand;
    code: string;
    tag: string | null;
    file: string | null;
    statement: number | null;
    line: number | null;
    column: number | null;
    sqlstate: string | null;
    error: string;
    hint: string | null;
  };
  "migration.slow": { durationMs: number; thresholdMs: number; runId: string };
  "migration.run.finished": {
    command: RunCommand;
    status: "applied" | "rolled-back" | "noop" | "failed";
    durationMs: number;
    /** Time spent applying (or rolling back) after the lock was granted; null when it never was. */
    applyMs: number | null;
    lockWaitMs: number | null;
    fromVersion: string | null;
    /** The newest applied migration after the run; null on an empty database or when the run never read it. */
    schemaVersion: string | null;
    /** Whether the run read drizzle's table: when false, the versions above say nothing. */
    schemaRead: boolean;
    applied: string[];
    rolledBack: string[];
    runId: string;
  };
  "migration.metrics.pushed": { url: string };
  "migration.metrics.push_failed": { url: string };
  "migration.status": Record<string, unknown>;
  "migration.verify.problem": { kind: string; object: string };
  "migration.verify.finished": {
    clean: boolean;
    problems: number;
    schemaVersion: string | null;
    /** `shadow` (a scratch database built from the applied migrations), `snapshot` (the fallback) or `none`. */
    comparison: "shadow" | "snapshot" | "none";
    snapshot: string | null;
  };
  /** The expected schema was built in a scratch database and both catalogs were read. */
  "migration.verify.shadow": { database: string; created: boolean; migrations: number; objects: number; durationMs: number };
  /** No scratch database could be made or built: drizzle-kit's snapshot is compared instead (WARNING). */
  "migration.verify.fallback": { comparison: "snapshot"; reason: string; code: string | null };
  /** Applied migrations this build does not ship: what they built shows as differences (WARNING). */
  "migration.verify.unknown": { unknown: number };
  /** A scratch database that could not be dropped or emptied (WARNING). */
  "migration.verify.shadow_left": { database: string };
  "migration.baseline.untouched": { file: string; statement: number; reason: string };
  "migration.baseline.finished": { file: string; changed: boolean; written: boolean; changes: unknown[] };
  "migration.lint.finding": Omit<Finding, "message">;
  "migration.lint.finished": { findings: number; files: number };
  "migration.plan.copy": LockPlan["copy"];
  "migration.plan.statement": { tag: string } & Pick<PlannedStatement, keyof PlannedStatement>;
  "migration.plan.gate": Record<string, never>;
  "migration.plan.finished": { migrations: string[]; failed: string[]; gateViolations: number };
  /** A failure outside any run: the CLI's last word before its exit code. */
  "migration.error": { code: string; hint: string | null };
}

export type EventName = keyof MigratorEvents;

/** One thing that happened: `event`, `severity`, `message`, and that event's fields. */
export type MigratorEvent = {
  [K in EventName]: { event: K; severity: Severity; message: string } & MigratorEvents[K];
}[EventName];

/** The event named `K`, e.g. `EventOf<"migration.applied">`. */
export type EventOf<K extends EventName> = Extract<MigratorEvent, { event: K }>;

/** Receives every event of a run; the library's only output. */
export type EventSink = (event: MigratorEvent) => void;
