import type { EventSink } from "./log.js";
import type { RunResult } from "./runner.js";

/** What the metrics read of a run. */
export type MetricsInput = Pick<
  RunResult,
  | "error"
  | "durationMs"
  | "applyMs"
  | "startedAt"
  | "lockWaitMs"
  | "applied"
  | "migrations"
  | "lastSuccessAt"
  | "schemaVersion"
  | "runCounts"
>;

/** The Pushgateway job every run pushes under; with the namespace it names the group a run replaces. */
export const METRICS_JOB = "yomu-migration";

export interface PushOptions {
  /** Base URL of the Pushgateway, e.g. http://prometheus-pushgateway.monitoring.svc:9091 */
  url: string;
  /** Grouping label: the Kubernetes namespace, so staging and production keep separate series. */
  namespace: string;
  slowThresholdMs: number;
  onEvent?: EventSink;
  timeoutMs?: number;
}

/**
 * Renders a run as Prometheus metrics (`yomu_migration_*`), in the text exposition format.
 * Run counts come from the history table, so they survive the Job's short-lived pods.
 */
export async function renderMetrics(result: MetricsInput, slowThresholdMs: number): Promise<string> {
  // prom-client is loaded only when metrics are wanted: a plain `up` stays small and quick.
  const { Registry, Gauge, Counter } = await import("prom-client");
  const registry = new Registry();
  const gauge = (name: string, help: string, value: number) => {
    new Gauge({ name, help, registers: [registry] }).set(value);
  };
  const seconds = (ms: number | null) => (ms ?? 0) / 1000;
  const finishedAt = (result.startedAt.getTime() + result.durationMs) / 1000;

  gauge(
    "yomu_migration_last_run_success",
    "1 if the last migration run succeeded (applied or nothing to do), 0 if it failed",
    result.error ? 0 : 1,
  );
  gauge("yomu_migration_last_run_duration_seconds", "Wall time of the last migration run", seconds(result.durationMs));
  gauge(
    "yomu_migration_slow_threshold_seconds",
    "A run slower than this is reported as slow (MIGRATION_SLOW_THRESHOLD)",
    seconds(slowThresholdMs),
  );
  gauge("yomu_migration_last_run_timestamp_seconds", "When the last migration run finished, Unix time", finishedAt);
  gauge(
    "yomu_migration_last_run_apply_seconds",
    "Time the last run spent applying after it got the lock: what migration.slow compares with the threshold",
    seconds(result.applyMs),
  );
  gauge("yomu_migration_lock_wait_seconds", "How long the last run waited for the migration lock", seconds(result.lockWaitMs));
  gauge("yomu_migration_applied", "Migrations applied by the last run", result.applied.length);
  gauge(
    "yomu_migration_pending",
    "Migrations this build ships that are still not applied after the last run",
    result.migrations.filter((m) => m.status !== "applied" && m.status !== "already-applied").length,
  );
  // PUT replaces the whole group, so the last success is re-sent from the history on every push,
  // failures included; otherwise a failed run would erase it.
  const lastSuccess = result.error ? result.lastSuccessAt?.getTime() : finishedAt * 1000;
  if (lastSuccess) {
    gauge(
      "yomu_migration_last_success_timestamp_seconds",
      "When the last successful migration run finished, Unix time",
      lastSuccess / 1000,
    );
  }
  const version = new Gauge({
    name: "yomu_migration_schema_version_info",
    help: "The schema version (tag of the newest applied migration) after the last run",
    labelNames: ["version"],
    registers: [registry],
  });
  version.set({ version: result.schemaVersion ?? "" }, 1);
  const runs = new Counter({
    name: "yomu_migration_runs_total",
    help: "Migration runs by status, read from drizzle.migration_runs",
    labelNames: ["status"],
    registers: [registry],
  });
  for (const status of ["applied", "noop", "failed", "crashed"]) runs.inc({ status }, result.runCounts[status] ?? 0);
  return registry.metrics();
}

/**
 * Pushes a run's metrics to a Pushgateway, replacing the previous run's group. Never throws: a
 * push that fails is reported as a WARNING event and the migration's outcome stands.
 *
 * @example await pushMetrics(result, { url: process.env.PUSHGATEWAY_URL, namespace: "yomu", slowThresholdMs: 30_000, onEvent });
 */
export async function pushMetrics(result: MetricsInput, options: PushOptions): Promise<boolean> {
  const target = `${options.url.replace(/\/+$/, "")}/metrics/job/${encodeURIComponent(METRICS_JOB)}/namespace/${encodeURIComponent(options.namespace)}`;
  try {
    const body = await renderMetrics(result, options.slowThresholdMs);
    // PUT, not POST: the group holds exactly this run's series, nothing stale from an older one.
    const response = await fetch(target, {
      method: "PUT",
      body,
      headers: { "content-type": "text/plain; version=0.0.4" },
      signal: AbortSignal.timeout(options.timeoutMs ?? 5_000),
    });
    if (!response.ok) throw new Error(`HTTP ${response.status} ${(await response.text()).slice(0, 200)}`);
    options.onEvent?.({
      event: "migration.metrics.pushed",
      severity: "DEBUG",
      message: `metrics pushed to ${options.url}`,
      url: options.url,
    });
    return true;
  } catch (error) {
    options.onEvent?.({
      event: "migration.metrics.push_failed",
      severity: "WARNING",
      message: `could not push metrics to ${options.url}: ${(error as Error).message}; the migration result stands`,
      url: options.url,
    });
    return false;
  }
}
