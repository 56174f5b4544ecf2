import { spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type RunResult, renderMetrics } from "@yomu/migrator";
import { afterAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { monitoringDir, type Obj, readManifest } from "./manifests.js";

const RULE_FILE = "migration-alerts.rules.yaml";
const UNIT_TESTS = join(monitoringDir, "migration-alerts.test.yaml");
// Every series the migrator pushes, from its own renderer: alerts and panels may only read these.
const PUSHED = await pushedSeries();

const work = mkdtempSync(join(tmpdir(), "yomu-alerts-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const rule = () => readManifest(join(monitoringDir, "prometheus-rule.yaml"));
const alerts = (r: Obj) => (r.spec.groups as Obj[]).flatMap((g) => g.rules as Obj[]).filter((x) => x.alert);

/** Writes a PrometheusRule's groups as a plain rule file beside a copy of the unit tests, as promtool wants them. */
function extract(r: Obj, dir: string): void {
  writeFileSync(join(dir, RULE_FILE), stringify({ groups: r.spec.groups }));
  copyFileSync(UNIT_TESTS, join(dir, "migration-alerts.test.yaml"));
}

async function pushedSeries(): Promise<string[]> {
  const result: RunResult = {
    runId: "00000000-0000-0000-0000-000000000000",
    status: "applied",
    startedAt: new Date(0),
    durationMs: 1,
    applyMs: 1,
    schemaRead: true,
    attempted: true,
    lockWaitMs: 0,
    fromVersion: null,
    schemaVersion: "0001_x",
    applied: ["0001_x"],
    migrations: [],
    slow: false,
    runCounts: { applied: 1 },
    lastSuccessAt: new Date(0),
  };
  const text = await renderMetrics(result, 30_000);
  return [...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1] as string);
}

function promtool(args: string[], cwd: string) {
  const run = spawnSync("promtool", args, { cwd, encoding: "utf8" });
  if (run.error) throw new Error(`promtool could not run (apt-get install prometheus): ${run.error.message}`);
  return { code: run.status, output: `${run.stdout}${run.stderr}` };
}

describe("PrometheusRule yomu-migration", () => {
  it("has the shape the Prometheus Operator accepts", () => {
    const r = rule();
    expect(r.apiVersion).toBe("monitoring.coreos.com/v1");
    expect(r.kind).toBe("PrometheusRule");
    expect(r.metadata.name).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    expect(Object.keys(r.spec)).toEqual(["groups"]);
    const groups = r.spec.groups as Obj[];
    expect(new Set(groups.map((g) => g.name)).size).toBe(groups.length);
    for (const group of groups) {
      expect(typeof group.name).toBe("string");
      for (const entry of group.rules as Obj[]) {
        expect(
          Object.keys(entry).every((k) => ["alert", "record", "expr", "for", "labels", "annotations", "keep_firing_for"].includes(k)),
        ).toBe(true);
        expect(typeof entry.expr).toBe("string");
        expect(Boolean(entry.alert) !== Boolean(entry.record)).toBe(true);
      }
    }
  });

  it("pages on a failed run and warns on a slow one, each with a summary and a runbook", () => {
    const all = alerts(rule());
    expect(all.map((a) => a.alert).sort()).toEqual(["YomuMigrationFailed", "YomuMigrationSlow"]);
    const failed = all.find((a) => a.alert === "YomuMigrationFailed") as Obj;
    const slow = all.find((a) => a.alert === "YomuMigrationSlow") as Obj;
    expect(failed.labels.severity).toBe("page");
    expect(slow.labels.severity).toBe("warning");
    expect(failed.expr).toMatch(/yomu_migration_last_run_success\{[^}]*\}\s*==\s*0/);
    // The threshold is the one the run pushed, so the alert follows MIGRATION_SLOW_THRESHOLD.
    expect(slow.expr).toMatch(/yomu_migration_last_run_apply_seconds\{[^}]*\}\s*>\s*yomu_migration_slow_threshold_seconds/);
    for (const a of all) {
      expect(a.annotations.summary).toBeTruthy();
      expect(a.annotations.description).toBeTruthy();
      const anchor = new URL(a.annotations.runbook_url).hash.slice(1);
      expect(anchor).toBe(a.alert.toLowerCase());
      // The runbook the alert links to exists, under that heading.
      expect(readFileSync(join(monitoringDir, "../README.md"), "utf8")).toMatch(new RegExp(`^#+ ${a.alert}$`, "m"));
    }
  });

  it("reads only series the migrator pushes, under the job it pushes them as", () => {
    for (const a of alerts(rule())) {
      const names = (a.expr as string).match(/yomu_[a-z_]+/g) ?? [];
      expect(names.length).toBeGreaterThan(0);
      for (const name of names) expect(PUSHED, `${a.alert}: ${name}`).toContain(name);
      for (const selector of (a.expr as string).match(/yomu_[a-z_]+\{[^}]*\}/g) ?? []) expect(selector).toContain('job="yomu-migration"');
    }
  });

  it("passes `promtool check rules`", () => {
    const dir = mkdtempSync(join(work, "check-"));
    extract(rule(), dir);
    const run = promtool(["check", "rules", RULE_FILE], dir);
    expect(run.output).toContain("SUCCESS: 2 rules found");
    expect(run.code).toBe(0);
  });

  it("passes its unit tests: a failure pages, a slow run warns, a healthy fast run fires nothing", () => {
    const dir = mkdtempSync(join(work, "test-"));
    extract(rule(), dir);
    const run = promtool(["test", "rules", "migration-alerts.test.yaml"], dir);
    expect(run.output).toContain("SUCCESS");
    expect(run.code).toBe(0);
  });

  it.each([
    [
      "the failure alert no longer pages",
      (r: Obj) => {
        (alerts(r).find((a) => a.alert === "YomuMigrationFailed") as Obj).labels.severity = "warning";
      },
    ],
    [
      "the slow alert ignores the pushed threshold",
      (r: Obj) => {
        const slow = alerts(r).find((a) => a.alert === "YomuMigrationSlow") as Obj;
        slow.expr = 'yomu_migration_last_run_apply_seconds{job="yomu-migration"} > 60';
      },
    ],
    [
      "the slow alert counts the wait for another runner's lock",
      (r: Obj) => {
        const slow = alerts(r).find((a) => a.alert === "YomuMigrationSlow") as Obj;
        slow.expr = String(slow.expr).replace("yomu_migration_last_run_apply_seconds", "yomu_migration_last_run_duration_seconds");
      },
    ],
    [
      "the failure alert waits ten minutes",
      (r: Obj) => {
        (alerts(r).find((a) => a.alert === "YomuMigrationFailed") as Obj).for = "10m";
      },
    ],
  ])("the unit tests catch a rule change where %s", (_what, mutate) => {
    const r = rule();
    mutate(r);
    const dir = mkdtempSync(join(work, "mutant-"));
    extract(r, dir);
    const run = promtool(["test", "rules", "migration-alerts.test.yaml"], dir);
    expect(run.code).not.toBe(0);
    expect(run.output).toContain("FAILED");
  });
});

describe("Grafana dashboard", () => {
  const dashboard = JSON.parse(readFileSync(join(monitoringDir, "grafana-dashboard.json"), "utf8"));

  it("stays small and queries only series the migrator pushes", () => {
    expect(dashboard.uid).toBe("yomu-migrations");
    const panels = dashboard.panels as Obj[];
    expect(panels.length).toBeGreaterThan(0);
    expect(panels.length).toBeLessThanOrEqual(8);
    expect(new Set(panels.map((p) => p.id)).size).toBe(panels.length);
    const exprs = panels.flatMap((p) => (p.targets as Obj[]).map((t) => t.expr as string));
    for (const expr of exprs) {
      const names = expr.match(/yomu_[a-z_]+/g) ?? [];
      expect(names.length, expr).toBeGreaterThan(0);
      for (const name of names) expect(PUSHED, expr).toContain(name);
      expect(expr).toContain('namespace="$namespace"');
    }
  });
});
