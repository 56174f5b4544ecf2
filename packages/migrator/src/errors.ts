/**
 * Exit codes shared by every command: the one source for the tables in README.md and
 * specs/114-drizzle-kit-k8s-migration/contracts/migrator-cli.md (test/docs/exit-codes.test.ts checks them).
 */
export const ExitCode = {
  ok: 0,
  migrationFailed: 1,
  usage: 2,
  lockTimeout: 3,
  verificationFailed: 4,
  notCurrent: 5,
  lintViolations: 6,
  unreachable: 7,
  internal: 8,
} as const;

/** What each exit code tells the caller, as the docs' tables print it. */
export const exitCodeMeanings: Readonly<Record<keyof typeof ExitCode, string>> = {
  ok: "success: applied, nothing to do, clean",
  migrationFailed: "a migration failed and was rolled back, or `down` could not run (nothing half-applied)",
  usage: "usage or configuration error, every problem listed at once",
  lockTimeout: "gave up waiting for another runner's advisory lock (retryable)",
  verificationFailed: "verification failed: a changed or out-of-order file, or schema drift",
  notCurrent: "not current: `status --require-current` while migrations are pending",
  lintViolations: "lint findings, or an opt-in plan gate tripped",
  unreachable: "database unreachable after retries, or the connection was lost mid-run (retryable)",
  internal: "internal error: a bug, the message says what failed",
};

export type ErrorCode =
  | "CONFIG_INVALID"
  | "JOURNAL_INVALID"
  | "CHECKSUM_MISMATCH"
  | "OUT_OF_ORDER"
  | "LOCK_TIMEOUT"
  | "MIGRATION_FAILED"
  | "INTERRUPTED"
  | "DATABASE_UNREACHABLE"
  | "CONNECTION_LOST"
  | "POOLED_CONNECTION"
  | "DOWN_UNAVAILABLE"
  | "SHADOW_UNAVAILABLE"
  | "INTERNAL";

const exitCodes: Record<ErrorCode, number> = {
  CONFIG_INVALID: ExitCode.usage,
  JOURNAL_INVALID: ExitCode.usage,
  CHECKSUM_MISMATCH: ExitCode.verificationFailed,
  OUT_OF_ORDER: ExitCode.verificationFailed,
  LOCK_TIMEOUT: ExitCode.lockTimeout,
  MIGRATION_FAILED: ExitCode.migrationFailed,
  INTERRUPTED: ExitCode.migrationFailed,
  DATABASE_UNREACHABLE: ExitCode.unreachable,
  // Retryable: the server ended the session (a failover, pg_terminate_backend); what a
  // transaction held was rolled back, so running again is safe.
  CONNECTION_LOST: ExitCode.unreachable,
  // A transaction-pooling proxy: the lock and the session settings would not stay with the run.
  POOLED_CONNECTION: ExitCode.usage,
  DOWN_UNAVAILABLE: ExitCode.migrationFailed,
  // No scratch database could be made for verify or plan: a setting or a privilege to fix.
  SHADOW_UNAVAILABLE: ExitCode.usage,
  INTERNAL: ExitCode.internal,
};

/**
 * Every failure the migrator reports: a stable `code`, a message that says what broke and
 * where, a `hint` that says what to do next, and the underlying `cause`.
 */
export class MigratorError extends Error {
  override name = "MigratorError";
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: { hint?: string; cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(message, { cause: options.cause });
    this.code = code;
    this.hint = options.hint;
    this.details = options.details ?? {};
  }

  get exitCode(): number {
    return exitCodes[this.code];
  }
}

/** Exit code for anything thrown: a MigratorError's own, else 8 (a bug, not a failed migration). */
export function exitCodeOf(error: unknown): number {
  return error instanceof MigratorError ? error.exitCode : ExitCode.internal;
}
