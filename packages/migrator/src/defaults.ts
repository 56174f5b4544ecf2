/**
 * Every default, once: the library's options, the CLI's settings and `--help` all read these.
 */
export const defaults = {
  dir: "drizzle/migrations",
  namespace: "default",
  lockWaitTimeoutMs: 300_000,
  // Measured under live load (bench/zero-downtime): a DDL statement waiting 5s for its lock held
  // every query on the table for those 5s (p99 ×49); 250ms kept p99 within 2× of before.
  lockTimeoutMs: 250,
  lockRetries: 10,
  lockRetryDelayMs: 500,
  statementTimeoutMs: 600_000,
  connectTimeoutMs: 60_000,
  slowThresholdMs: 30_000,
  /** How often a running statement reports `migration.progress`. */
  progressIntervalMs: 10_000,
} as const;

export type Defaults = typeof defaults;
