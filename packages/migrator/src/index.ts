// The library face of @yomu/migrator: functions that return results and emit events, never
// writing to the console, exiting or installing signal handlers. The command line is
// `@yomu/migrator/cli`; the JSON-lines sink that writes events to stdout is `@yomu/migrator/log`.
export { baselineFile, rewriteBaseline } from "./baseline.js";
export { type DatabaseTarget, describeDatabase } from "./connection.js";
export { type DownOptions, type DownResult, rollBack } from "./down.js";
export { readApplied } from "./drizzle-table.js";
export { type ErrorCode, ExitCode, exitCodeOf, MigratorError } from "./errors.js";
export type { EventName, EventOf, MigratorEvents } from "./events.js";
export { type Migration, readMigrations } from "./journal.js";
export { type Finding, lint } from "./lint.js";
export { type LintPendingOptions, lintPending } from "./lint-pending.js";
export { MIGRATION_LOCK_KEY } from "./lock.js";
export { gateViolations, type LockPlan, type LockPlanOptions, type PlannedStatement, planLocks } from "./lock-plan.js";
export { planJson, planMarkdown, planTable } from "./lock-plan-report.js";
export { type EventSink, type MigratorEvent, redact, type Severity } from "./log.js";
export { pushMetrics, renderMetrics } from "./metrics.js";
export { type AppliedRow, type Plan, planMigrations } from "./plan.js";
export { type RunOptions, type RunResult, runMigrations } from "./runner.js";
export { readStatus, type Status } from "./status.js";
export { type VerifyProblem, type VerifyResult, verify } from "./verify.js";
