import type { ChildProcess } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { MIGRATION_LOCK_KEY } from "@yomu/migrator";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../support/database.js";
import {
  type ContainerRun,
  configMap,
  container,
  job,
  type LogLine,
  type Obj,
  podOf,
  repoRoot,
  resolveEnv,
  runContainer,
  testSecret,
} from "./manifests.js";

// trust auth on the test servers ignores it; it is here to prove it never reaches a log line.
const PASSWORD = "k8s-test-Pa55word";
const shipped = JSON.parse(readFileSync(join(repoRoot, "drizzle/migrations/meta/_journal.json"), "utf8")).entries.map(
  (e: { tag: string }) => e.tag,
) as string[];

const work = mkdtempSync(join(tmpdir(), "yomu-k8s-job-"));
const databases: TestDatabase[] = [];
afterAll(async () => {
  await Promise.all(databases.map((d) => d.drop()));
  rmSync(work, { recursive: true, force: true });
});

async function freshDatabase(): Promise<TestDatabase> {
  const db = await createTestDatabase("k8sjob");
  databases.push(db);
  return db;
}

function withPassword(url: string): string {
  const u = new URL(url);
  u.password = PASSWORD;
  return u.toString();
}

/**
 * Runs the Job's `migrate` container as one pod of it would: the manifest's command, its
 * environment built from the ConfigMap, a Secret pointing at `db`, and downward-API values for a
 * pod named `podName` carrying the release label the deploy sets.
 */
function runJobPod(
  db: TestDatabase,
  podName: string,
  patch: (j: Obj) => void = () => {},
  onEvent?: (e: LogLine, child: ChildProcess) => void,
): Promise<ContainerRun> {
  const j = job();
  j.spec.template.metadata.labels["app.kubernetes.io/version"] = "v1.4.2";
  patch(j);
  const migrate = container(j.spec.template.spec, "migrate");
  const env = resolveEnv(migrate, {
    configMaps: [configMap()],
    secrets: [testSecret(withPassword(db.url))],
    pod: podOf(j.spec.template, podName),
  });
  // No Pushgateway here (pushgateway.test.ts has one): an unreachable address would only add a warning.
  delete env.PUSHGATEWAY_URL;
  return runContainer(migrate, env, onEvent);
}

const finished = (run: ContainerRun) => run.events.find((e) => e.event === "migration.run.finished");
const named = (run: ContainerRun, event: string) => run.events.filter((e) => e.event === event);

function expectCleanOutput(run: ContainerRun) {
  // Every stdout line is a JSON log line, and the password is nowhere.
  expect(run.otherLines).toEqual([]);
  expect(run.stdout).not.toContain(PASSWORD);
  expect(run.stderr).not.toContain(PASSWORD);
}

describe("the migration Job's command, as the manifest writes it (T031, T032)", () => {
  let db: TestDatabase;
  let run: ContainerRun;

  beforeAll(async () => {
    db = await freshDatabase();
    run = await runJobPod(db, "yomu-migration-20261121-abcde");
  });

  it("exits 0 and logs the contract's events in order", () => {
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    const order = run.events
      .map((e) => e.event)
      .filter((e) => ["migration.lock.acquired", "migration.applied", "migration.run.finished"].includes(e));
    expect(order).toEqual(["migration.lock.acquired", ...shipped.map(() => "migration.applied"), "migration.run.finished"]);
    expect(named(run, "migration.applied").map((e) => e.tag)).toEqual(shipped);
    expect(finished(run)).toMatchObject({ status: "applied", applied: shipped, schemaVersion: shipped.at(-1) });
    for (const e of run.events) expect(Object.keys(e)).toEqual(expect.arrayContaining(["time", "severity", "message", "event"]));
    expectCleanOutput(run);
  });

  it("records the pod and the release from the downward API in the history table", async () => {
    const rows = await db.query("SELECT status, host, app_version, applied FROM drizzle.migration_runs");
    expect(rows.rows).toEqual([{ status: "applied", host: "yomu-migration-20261121-abcde", app_version: "v1.4.2", applied: shipped }]);
  });

  it("a second Job for the same release finds nothing to do", async () => {
    const again = await runJobPod(db, "yomu-migration-20261121-fghij");
    expect(again.code).toBe(0);
    expect(named(again, "migration.applied")).toEqual([]);
    expect(finished(again)).toMatchObject({ status: "noop", applied: [], schemaVersion: shipped.at(-1) });
    expectCleanOutput(again);
  });
});

describe("two Jobs at once (T033)", () => {
  it("both wait on the advisory lock; then one applies every migration and the other finds nothing to do", async () => {
    const db = await freshDatabase();
    // Hold the lock until both pods are waiting on it, so they truly contend instead of one
    // finishing before the other starts.
    const holder = new pg.Client(db.url);
    await holder.connect();
    const key = [MIGRATION_LOCK_KEY.classId, MIGRATION_LOCK_KEY.objId];
    let runs: ContainerRun[];
    try {
      await holder.query("SELECT pg_advisory_lock($1, $2)", key);
      let waiting = 0;
      let bothWaiting = () => {};
      const ready = new Promise<void>((resolve) => {
        bothWaiting = resolve;
      });
      const onEvent = (e: LogLine) => {
        if (e.event === "migration.lock.waiting" && ++waiting === 2) bothWaiting();
      };
      const pods = [
        runJobPod(db, "yomu-migration-a-11111", undefined, onEvent),
        runJobPod(db, "yomu-migration-b-22222", undefined, onEvent),
      ];
      await Promise.race([ready, Promise.all(pods)]);
      expect(waiting).toBe(2);
      await holder.query("SELECT pg_advisory_unlock($1, $2)", key);
      runs = await Promise.all(pods);
    } finally {
      await holder.end();
    }
    for (const run of runs) {
      expect(run.code).toBe(0);
      expectCleanOutput(run);
      expect(named(run, "migration.lock.acquired")).toHaveLength(1);
    }
    expect(runs.map((r) => finished(r)?.status).sort()).toEqual(["applied", "noop"]);
    // Each migration applied exactly once, by exactly one of them.
    expect(runs.flatMap((r) => named(r, "migration.applied").map((e) => e.tag))).toEqual(shipped);
    const recorded = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM drizzle.__drizzle_migrations");
    expect(recorded.rows[0]?.n).toBe(shipped.length);
    const history = await db.query("SELECT host, status FROM drizzle.migration_runs ORDER BY host");
    expect(history.rows.map((r) => r.host)).toEqual(["yomu-migration-a-11111", "yomu-migration-b-22222"]);
    expect(history.rows.map((r) => r.status).sort()).toEqual(["applied", "noop"]);
  });
});

/** The migrations folder of an image that ships one more migration, `sql`, after the real ones. */
function shipsExtra(name: string, tag: string, sql: string): (j: Obj) => void {
  const dir = join(work, name);
  cpSync(join(repoRoot, "drizzle/migrations"), dir, { recursive: true });
  writeFileSync(join(dir, `${tag}.sql`), sql);
  const journalPath = join(dir, "meta/_journal.json");
  const journal = JSON.parse(readFileSync(journalPath, "utf8"));
  journal.entries.push({ idx: journal.entries.length, version: "7", when: Date.parse("2999-12-31T23:59:59Z"), tag, breakpoints: true });
  writeFileSync(journalPath, JSON.stringify(journal, null, 2));
  return (j) => {
    container(j.spec.template.spec, "migrate").env.push({ name: "MIGRATIONS_DIR", value: dir });
  };
}

describe("a Job whose image ships invalid SQL (T034)", () => {
  const badTag = "29991231235959_broken";
  const shipBroken = shipsExtra(
    "broken-migrations",
    badTag,
    'ALTER TABLE "users" ADD COLUMN "nickname" text;\n--> statement-breakpoint\nCREATE TABLE broken (id int;\n',
  );

  it("exits 1, names the file and SQLSTATE, and leaves the schema as it was", async () => {
    const db = await freshDatabase();
    expect((await runJobPod(db, "yomu-migration-good-00001")).code).toBe(0);

    const run = await runJobPod(db, "yomu-migration-bad-00002", shipBroken);
    expect(run.code).toBe(1);
    expectCleanOutput(run);
    const failed = named(run, "migration.failed");
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ tag: badTag, sqlstate: "42601" });
    expect(finished(run)).toMatchObject({ status: "failed", applied: [], schemaVersion: shipped.at(-1) });
    // All or nothing: the statement before the broken one was rolled back with it.
    const column = await db.query("SELECT 1 FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'nickname'");
    expect(column.rowCount).toBe(0);
    const recorded = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM drizzle.__drizzle_migrations");
    expect(recorded.rows[0]?.n).toBe(shipped.length);
  });

  it("fails the Job at once instead of retrying, by the manifest's podFailurePolicy", async () => {
    const db = await freshDatabase();
    const run = await runJobPod(db, "yomu-migration-bad-00003", shipBroken);
    expect(run.code).not.toBe(0);
    expect(policyAction(job(), run.code as number)).toBe("FailJob");
    // What a retry is for stays a retry.
    expect(policyAction(job(), 3)).toBe("Count");
    expect(policyAction(job(), 7)).toBe("Count");
  });
});

describe("a Job pod stopped mid-migration (deadline, deletion, node drain)", () => {
  const shipSlow = shipsExtra("slow-migrations", "29991231235959_slow", "SELECT pg_sleep(60);\n");

  it("rolls back and releases the lock on SIGTERM, and a drain is retried rather than failing the Job", async () => {
    const db = await freshDatabase();
    let pod: ChildProcess | undefined;
    const running = runJobPod(db, "yomu-migration-slow-00001", shipSlow, (_e, child) => {
      pod = child;
    });
    // The kubelet's SIGTERM (deadline, deletion, drain), while the long statement runs.
    const sleeping = "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND state = 'active' AND wait_event = 'PgSleep'";
    for (let i = 0; i < 300 && !((await db.query(sleeping)).rowCount ?? 0); i++) await sleep(100);
    expect((await db.query(sleeping)).rowCount).toBe(1);
    expect(pod?.kill("SIGTERM")).toBe(true);
    const run = await running;
    expect(run.code).toBe(1);
    expectCleanOutput(run);
    expect(named(run, "migration.interrupted")).toHaveLength(1);
    expect(finished(run)).toMatchObject({ status: "failed", applied: [] });
    const tables = await db.query("SELECT 1 FROM information_schema.tables WHERE table_schema = 'public'");
    expect(tables.rowCount).toBe(0);
    // Evicted by a drain, the pod carries DisruptionTarget and the attempt does not count;
    // killed for any other reason, exit 1 fails the Job.
    expect(policyAction(job(), run.code as number, ["DisruptionTarget"])).toBe("Ignore");
    expect(policyAction(job(), run.code as number)).toBe("FailJob");
    // The retry finds the lock free and nothing half-applied.
    const retry = await runJobPod(db, "yomu-migration-slow-00002");
    expect(retry.code).toBe(0);
    expect(finished(retry)).toMatchObject({ status: "applied", applied: shipped });
  });
});

/**
 * What the Job controller does with a failed pod of the `migrate` container: the action of the
 * first podFailurePolicy rule that matches its exit code or its conditions, else "Count" (the
 * attempt counts against backoffLimit).
 */
function policyAction(j: Obj, code: number, conditions: string[] = []): string {
  for (const rule of (j.spec.podFailurePolicy?.rules as Obj[] | undefined) ?? []) {
    const onCode = rule.onExitCodes as Obj | undefined;
    if (onCode && (!onCode.containerName || onCode.containerName === "migrate")) {
      const listed = (onCode.values as number[]).includes(code);
      if (onCode.operator === "In" ? listed : !listed) return rule.action as string;
    }
    const onConditions = (rule.onPodConditions as Obj[] | undefined) ?? [];
    if (onConditions.some((c) => conditions.includes(c.type) && c.status === "True")) return rule.action as string;
  }
  return "Count";
}
