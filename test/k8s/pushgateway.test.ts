import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { createTestDatabase, type TestDatabase } from "../support/database.js";
import { freePort } from "../support/net.js";
import {
  type ContainerRun,
  configMap,
  container,
  job,
  monitoringDir,
  type Obj,
  podOf,
  readManifest,
  repoRoot,
  resolveEnv,
  runContainer,
  testSecret,
} from "./manifests.js";

// T035: the Job, as the manifest writes it, leaves on a real Pushgateway the series the
// PrometheusRule reads; a real Prometheus scraping that gateway (honor_labels, as a
// Pushgateway scrape must be) evaluates the rule's own groups on them.
const NAMESPACE = "yomu-test";
const shipped = JSON.parse(readFileSync(join(repoRoot, "drizzle/migrations/meta/_journal.json"), "utf8")).entries.map(
  (e: { tag: string }) => e.tag,
) as string[];

const work = mkdtempSync(join(tmpdir(), "yomu-k8s-metrics-"));
const children: ChildProcess[] = [];
let db: TestDatabase;
let gateway: string;
let prometheus: string;

beforeAll(async () => {
  db = await createTestDatabase("k8smetrics");
  const gatewayPort = await freePort();
  // Debian's build persists to /var/lib/prometheus/pushgateway.data by default, which would hand
  // this gateway every group any other gateway on the machine has pushed; keep it in memory.
  children.push(start("prometheus-pushgateway", [`--web.listen-address=127.0.0.1:${gatewayPort}`, "--persistence.file="]));
  gateway = `http://127.0.0.1:${gatewayPort}`;
  await untilReady(gateway);

  const rule = readManifest(join(monitoringDir, "prometheus-rule.yaml"));
  writeFileSync(join(work, "rules.yaml"), stringify({ groups: rule.spec.groups }));
  writeFileSync(
    join(work, "prometheus.yaml"),
    stringify({
      global: { scrape_interval: "1s", evaluation_interval: "1s" },
      rule_files: ["rules.yaml"],
      scrape_configs: [{ job_name: "pushgateway", honor_labels: true, static_configs: [{ targets: [`127.0.0.1:${gatewayPort}`] }] }],
    }),
  );
  const prometheusPort = await freePort();
  children.push(
    start("prometheus", [
      `--config.file=${join(work, "prometheus.yaml")}`,
      `--storage.tsdb.path=${join(work, "data")}`,
      `--web.listen-address=127.0.0.1:${prometheusPort}`,
    ]),
  );
  prometheus = `http://127.0.0.1:${prometheusPort}`;
  await untilReady(prometheus);

  // An image whose newest migration is broken, for the failed run.
  const broken = join(work, "broken-migrations");
  cpSync(join(repoRoot, "drizzle/migrations"), broken, { recursive: true });
  writeFileSync(join(broken, "29991231235959_broken.sql"), "CREATE TABLE broken (id int;\n");
  const journal = JSON.parse(readFileSync(join(broken, "meta/_journal.json"), "utf8"));
  journal.entries.push({
    idx: journal.entries.length,
    version: "7",
    when: Date.parse("2999-12-31T23:59:59Z"),
    tag: "29991231235959_broken",
    breakpoints: true,
  });
  writeFileSync(join(broken, "meta/_journal.json"), JSON.stringify(journal));
  // And one whose newest migration takes a moment: "slow" is time spent applying, which a no-op
  // run has almost none of.
  const slow = join(work, "slow-migrations");
  cpSync(join(repoRoot, "drizzle/migrations"), slow, { recursive: true });
  writeFileSync(join(slow, "29991231235959_nap.sql"), "SELECT pg_sleep(0.05);\n");
  const slowJournal = JSON.parse(readFileSync(join(slow, "meta/_journal.json"), "utf8"));
  slowJournal.entries.push({ ...journal.entries.at(-1), idx: slowJournal.entries.length, tag: "29991231235959_nap" });
  writeFileSync(join(slow, "meta/_journal.json"), JSON.stringify(slowJournal));
}, 120_000);

afterAll(async () => {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      await once(child, "exit");
    }
  }
  await db?.drop();
  rmSync(work, { recursive: true, force: true });
});

/** One pod of the Job with the gateway in the ConfigMap, as the cluster's ConfigMap would point at its own. */
function runJob(options: { slowThreshold?: string; broken?: boolean } = {}): Promise<ContainerRun> {
  const cm = configMap();
  cm.data.PUSHGATEWAY_URL = gateway;
  if (options.slowThreshold) cm.data.MIGRATION_SLOW_THRESHOLD = options.slowThreshold;
  const j = job();
  j.spec.template.metadata.labels["app.kubernetes.io/version"] = "v2.0.0";
  const migrate = container(j.spec.template.spec, "migrate");
  if (options.broken) migrate.env.push({ name: "MIGRATIONS_DIR", value: join(work, "broken-migrations") });
  if (options.slowThreshold) migrate.env.push({ name: "MIGRATIONS_DIR", value: join(work, "slow-migrations") });
  const env = resolveEnv(migrate, {
    configMaps: [cm],
    secrets: [testSecret(db.url)],
    pod: podOf(j.spec.template, "yomu-migration-m-1", NAMESPACE),
  });
  return runContainer(migrate, env);
}

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

async function gatewaySeries(): Promise<Sample[]> {
  const text = await (await fetch(`${gateway}/metrics`)).text();
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    const m = /^(yomu_migration_\w+)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
    if (!m) continue;
    const labels = Object.fromEntries([...(m[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2]]));
    samples.push({ name: m[1] as string, labels: labels as Record<string, string>, value: Number(m[3]) });
  }
  return samples;
}

function only(samples: Sample[], name: string, labels: Record<string, string> = {}): Sample {
  const found = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  expect(found, `${name} ${JSON.stringify(labels)}`).toHaveLength(1);
  return found[0] as Sample;
}

describe("metrics on a real Pushgateway, alerts from a real Prometheus (T035)", () => {
  it("a successful run leaves every series the alerts read, under job and namespace, with the run's values", async () => {
    const before = Date.now() / 1000;
    const run = await runJob();
    expect(run.code).toBe(0);
    expect(run.events.filter((e) => e.event === "migration.metrics.push_failed")).toEqual([]);
    const samples = await gatewaySeries();
    for (const s of samples) expect(s.labels).toMatchObject({ job: "yomu-migration", namespace: NAMESPACE });
    expect(only(samples, "yomu_migration_last_run_success").value).toBe(1);
    expect(only(samples, "yomu_migration_last_run_duration_seconds").value).toBeGreaterThan(0);
    // The threshold comes from the ConfigMap, so the alert compares against what the Job used.
    expect(only(samples, "yomu_migration_slow_threshold_seconds").value).toBe(30);
    const finishedAt = only(samples, "yomu_migration_last_run_timestamp_seconds").value;
    expect(finishedAt).toBeGreaterThanOrEqual(Math.floor(before));
    expect(only(samples, "yomu_migration_last_success_timestamp_seconds").value).toBe(finishedAt);
    expect(only(samples, "yomu_migration_schema_version_info", { version: shipped.at(-1) as string }).value).toBe(1);
    expect(only(samples, "yomu_migration_pending").value).toBe(0);
    expect(only(samples, "yomu_migration_runs_total", { status: "applied" }).value).toBe(1);
    expect(only(samples, "yomu_migration_runs_total", { status: "failed" }).value).toBe(0);
  });

  it("Prometheus, having scraped that run and evaluated the rules, fires nothing", async () => {
    await untilScraped('yomu_migration_last_run_success{job="yomu-migration",namespace="yomu-test"} == 1');
    await untilEvaluatedAfter(Date.now());
    expect(await firing()).toEqual([]);
  }, 90_000);

  it("a failed run: success 0, the failure counted, the last success kept, and YomuMigrationFailed pages", async () => {
    const successBefore = only(await gatewaySeries(), "yomu_migration_last_success_timestamp_seconds").value;
    const run = await runJob({ broken: true });
    expect(run.code).toBe(1);
    const samples = await gatewaySeries();
    expect(only(samples, "yomu_migration_last_run_success").value).toBe(0);
    expect(only(samples, "yomu_migration_runs_total", { status: "failed" }).value).toBe(1);
    expect(only(samples, "yomu_migration_last_success_timestamp_seconds").value).toBe(successBefore);
    expect(only(samples, "yomu_migration_pending").value).toBe(1);
    const alert = await untilFiring("YomuMigrationFailed");
    expect(alert.labels).toMatchObject({ severity: "page", job: "yomu-migration", namespace: NAMESPACE });
    expect(alert.annotations.summary).toBe(`Migration run failed in ${NAMESPACE}`);
  }, 90_000);

  it("a run over its threshold: YomuMigrationSlow warns, and the failure clears", async () => {
    const run = await runJob({ slowThreshold: "1ms" });
    expect(run.code).toBe(0);
    expect(run.events.filter((e) => e.event === "migration.slow")).toHaveLength(1);
    expect(only(await gatewaySeries(), "yomu_migration_slow_threshold_seconds").value).toBe(0.001);
    const alert = await untilFiring("YomuMigrationSlow");
    expect(alert.labels).toMatchObject({ severity: "warning", job: "yomu-migration", namespace: NAMESPACE });
    await untilScraped('yomu_migration_last_run_success{job="yomu-migration",namespace="yomu-test"} == 1');
    await untilEvaluatedAfter(Date.now());
    expect((await firing()).map((a) => a.labels.alertname)).toEqual(["YomuMigrationSlow"]);
  }, 90_000);
});

function start(command: string, args: string[]): ChildProcess {
  const child = spawn(command, args, { cwd: work, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
    stderr = (stderr + chunk).slice(-4000);
  });
  child.on("error", (error) => {
    stderr += `\n${command} could not start (apt-get install prometheus prometheus-pushgateway): ${error.message}`;
  });
  Object.defineProperty(child, "lastStderr", { get: () => stderr });
  return child;
}

async function poll<T>(what: string, attempt: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 240; i++) {
    const dead = children.find((c) => c.exitCode !== null);
    if (dead) throw new Error(`${dead.spawnfile} exited: ${(dead as unknown as { lastStderr: string }).lastStderr}`);
    try {
      const result = await attempt();
      if (result !== undefined) return result;
    } catch {}
    await sleep(250);
  }
  throw new Error(`gave up waiting for ${what}`);
}

const untilReady = (base: string) => poll(`${base}/-/ready`, async () => ((await fetch(`${base}/-/ready`)).ok ? true : undefined));

async function api(path: string): Promise<any> {
  const body = (await (await fetch(`${prometheus}/api/v1/${path}`)).json()) as { status: string; data: any };
  if (body.status !== "success") throw new Error(JSON.stringify(body));
  return body.data;
}

const untilScraped = (query: string) =>
  poll(query, async () => ((await api(`query?query=${encodeURIComponent(query)}`)).result.length > 0 ? true : undefined));

/** Waits for a rule evaluation that started after `ms`, so the alerts reflect what has been scraped by then. */
const untilEvaluatedAfter = (ms: number) =>
  poll("a rule evaluation", async () => {
    const groups = (await api("rules")).groups as Obj[];
    return groups.length > 0 && groups.every((g) => Date.parse(g.lastEvaluation) > ms) ? true : undefined;
  });

async function firing(): Promise<Obj[]> {
  return ((await api("alerts")).alerts as Obj[]).filter((a) => a.state === "firing");
}

const untilFiring = (name: string) => poll(name, async () => (await firing()).find((a) => a.labels.alertname === name));
