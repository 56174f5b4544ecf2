import { fileURLToPath } from "node:url";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../../test/support/database.js";
import { freePort } from "../../../test/support/net.js";
import { type Pushgateway, type Sample, startPushgateway } from "../../../test/support/pushgateway.js";
import { eventsNamed, only, runCli, startCli, takeMigrationLock, withClient } from "./support/cli.js";
import { MigrationsFolder } from "./support/migrations.js";

const repoMigrations = fileURLToPath(new URL("../../../drizzle/migrations", import.meta.url));

interface RunRow {
  status: string;
  from_version: string | null;
  to_version: string | null;
  applied: string[];
  error: string | null;
  error_code: string | null;
  host: string | null;
  app_version: string | null;
  duration_ms: number | null;
  finished_at: Date | null;
}

async function history(db: TestDatabase): Promise<RunRow[]> {
  return (await db.query<RunRow>("SELECT * FROM drizzle.migration_runs ORDER BY started_at")).rows;
}

function sample(samples: Sample[], name: string, labels: Record<string, string> = {}): Sample | undefined {
  return samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

describe("history table", () => {
  let db: TestDatabase;
  const folder = new MigrationsFolder([
    { name: "create_notes", statements: ["CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL)"] },
  ]);
  const env = () => ({ DATABASE_URL: db.url, MIGRATIONS_DIR: folder.dir, POD_NAME: "yomu-migration-abc12", APP_VERSION: "1.4.2" });

  beforeAll(async () => {
    db = await createTestDatabase("hist");
  });
  afterAll(async () => {
    await db.drop();
    folder.remove();
  });

  it("records an applying run with versions, tags, the pod's name and the app version", async () => {
    const run = await runCli([], env());
    expect(run.code).toBe(0);
    const [row] = await history(db);
    expect(row).toMatchObject({
      status: "applied",
      from_version: null,
      to_version: folder.tags[0],
      applied: [folder.tags[0]],
      error: null,
      host: "yomu-migration-abc12",
      app_version: "1.4.2",
    });
    expect(row?.duration_ms).toBe(only(run, "migration.run.finished").durationMs);
  });

  it("keeps a failed run's row although its migrations were rolled back", async () => {
    folder.add({ name: "add_tags", statements: ["ALTER TABLE notes ADD COLUMN tags text[]"] });
    folder.add({ name: "broken", statements: ["ALTER TABLE notes ADD COLUMN oops nonexistent_type"] });
    const run = await runCli([], env());
    expect(run.code).toBe(1);
    const rows = await history(db);
    const failed = rows[rows.length - 1];
    expect(failed).toMatchObject({
      status: "failed",
      error_code: "MIGRATION_FAILED",
      from_version: folder.tags[0],
      to_version: folder.tags[0],
      applied: [],
    });
    expect(failed?.error).toContain("nonexistent_type");
    const columns = await db.query("SELECT 1 FROM information_schema.columns WHERE table_name = 'notes' AND column_name = 'tags'");
    expect(columns.rowCount).toBe(0);
  });

  it("records a runner that gave up waiting for the lock", async () => {
    const holder = new pg.Client(db.url);
    await holder.connect();
    try {
      await takeMigrationLock(holder);
      const run = await runCli(["--lock-wait-timeout", "300ms"], env());
      expect(run.code).toBe(3);
    } finally {
      await holder.end();
    }
    const rows = await history(db);
    expect(rows[rows.length - 1]).toMatchObject({ status: "failed", error_code: "LOCK_TIMEOUT" });
  });

  it("counts runs by status over the whole history", async () => {
    folder.migrations.pop();
    folder.writeJournal();
    expect((await runCli([], env())).code).toBe(0);
    expect((await runCli([], env())).code).toBe(0);
    const counts = await db.query<{ status: string; n: number }>(
      "SELECT status, count(*)::int AS n FROM drizzle.migration_runs GROUP BY status",
    );
    expect(Object.fromEntries(counts.rows.map((r) => [r.status, r.n]))).toEqual({ applied: 2, failed: 2, noop: 1 });
  });

  it("marks a run killed mid-migration as crashed on the next run", async () => {
    await db.query(`ALTER DATABASE ${pg.escapeIdentifier(db.name)} SET yomu.sleep = '30'`);
    folder.add({ name: "slow", statements: ["SELECT pg_sleep(coalesce(current_setting('yomu.sleep', true), '0')::float)"] });
    const runner = startCli([], env());
    await runner.waitFor("migration.plan");
    runner.child.kill("SIGKILL");
    await runner.done;
    await db.query(`ALTER DATABASE ${pg.escapeIdentifier(db.name)} RESET yomu.sleep`);
    const next = await runCli(["--lock-wait-timeout", "20s"], env());
    expect(next.code).toBe(0);
    expect(only(next, "migration.history.crashed")).toMatchObject({ severity: "WARNING", runs: 1 });
    const statuses = (await history(db)).map((r) => r.status);
    expect(statuses.filter((s) => s === "crashed")).toHaveLength(1);
    expect(statuses).not.toContain("running");
  });
});

describe("metrics on a real Pushgateway", () => {
  let db: TestDatabase;
  let gateway: Pushgateway;
  const folder = new MigrationsFolder([{ name: "create_things", statements: ["CREATE TABLE things (id int PRIMARY KEY)"] }]);
  const group = { job: "yomu-migration", namespace: "yomu-staging" };
  const env = () => ({ DATABASE_URL: db.url, MIGRATIONS_DIR: folder.dir, PUSHGATEWAY_URL: gateway.url, POD_NAMESPACE: "yomu-staging" });

  beforeAll(async () => {
    db = await createTestDatabase("metrics");
    gateway = await startPushgateway();
  });
  afterAll(async () => {
    await gateway.stop();
    await db.drop();
    folder.remove();
  });

  it("leaves the run's series, grouped by job and namespace", async () => {
    const run = await runCli([], env());
    expect(run.code).toBe(0);
    const samples = await gateway.samples();
    const finished = only(run, "migration.run.finished");
    expect(sample(samples, "yomu_migration_last_run_success", group)?.value).toBe(1);
    expect(sample(samples, "yomu_migration_last_run_duration_seconds", group)?.value).toBeCloseTo(
      (finished.durationMs as number) / 1000,
      3,
    );
    expect(sample(samples, "yomu_migration_schema_version_info", { ...group, version: folder.tags[0] as string })?.value).toBe(1);
    expect(sample(samples, "yomu_migration_runs_total", { ...group, status: "applied" })?.value).toBe(1);
    expect(sample(samples, "yomu_migration_runs_total", { ...group, status: "failed" })?.value).toBe(0);
    expect(sample(samples, "yomu_migration_pending", group)?.value).toBe(0);
    expect(sample(samples, "yomu_migration_slow_threshold_seconds", group)?.value).toBe(30);
    expect(sample(samples, "yomu_migration_last_success_timestamp_seconds", group)?.value).toBeGreaterThan(Date.parse("2026-01-01") / 1000);
  });

  it("reports a failure while keeping the time of the last success", async () => {
    const before = sample(await gateway.samples(), "yomu_migration_last_success_timestamp_seconds", group)?.value;
    folder.add({ name: "broken", statements: ["SELECT * FROM no_such_table"] });
    const run = await runCli([], env());
    expect(run.code).toBe(1);
    const samples = await gateway.samples();
    expect(sample(samples, "yomu_migration_last_run_success", group)?.value).toBe(0);
    expect(sample(samples, "yomu_migration_pending", group)?.value).toBe(1);
    expect(sample(samples, "yomu_migration_runs_total", { ...group, status: "failed" })?.value).toBe(1);
    expect(sample(samples, "yomu_migration_last_success_timestamp_seconds", group)?.value).toBeCloseTo(before as number, 2);
    folder.migrations.pop();
    folder.writeJournal();
  });

  it("flags a run over the slow threshold with a WARNING and the metrics the alert compares", async () => {
    folder.add({ name: "nap", statements: ["SELECT pg_sleep(0.4)"] });
    const run = await runCli(["--slow-threshold", "100ms"], env());
    expect(run.code).toBe(0);
    const slow = only(run, "migration.slow");
    expect(slow.severity).toBe("WARNING");
    expect(slow.thresholdMs).toBe(100);
    expect(slow.durationMs as number).toBeGreaterThan(100);
    const samples = await gateway.samples();
    const duration = sample(samples, "yomu_migration_last_run_duration_seconds", group)?.value as number;
    const threshold = sample(samples, "yomu_migration_slow_threshold_seconds", group)?.value as number;
    expect(threshold).toBe(0.1);
    expect(duration).toBeGreaterThan(threshold);
  });

  it("still migrates, and warns, when the gateway is down", async () => {
    folder.add({ name: "more", statements: ["CREATE TABLE more_things (id int)"] });
    const deadGateway = `http://127.0.0.1:${await freePort()}`;
    const run = await runCli([], { ...env(), PUSHGATEWAY_URL: deadGateway });
    expect(run.code).toBe(0);
    expect(only(run, "migration.run.finished").status).toBe("applied");
    expect(only(run, "migration.metrics.push_failed")).toMatchObject({ severity: "WARNING", url: deadGateway });
  });
});

describe("status", () => {
  let db: TestDatabase;
  const folder = new MigrationsFolder([
    { name: "one", statements: ["CREATE TABLE one (id int)"] },
    { name: "two", statements: ["CREATE TABLE two (id int)"] },
  ]);
  const env = () => ({ DATABASE_URL: db.url, MIGRATIONS_DIR: folder.dir });

  beforeAll(async () => {
    db = await createTestDatabase("status");
  });
  afterAll(async () => {
    await db.drop();
    folder.remove();
  });

  it("lists pending migrations and exits 5 with --require-current until they are applied", async () => {
    const before = await runCli(["status", "--json", "--require-current"], env());
    expect(before.code).toBe(5);
    // One JSON object on one line, like every other line the CLI prints.
    expect(before.stdout.trim().split("\n")).toHaveLength(1);
    const state = JSON.parse(before.stdout);
    expect(state).toMatchObject({ schemaVersion: null, expectedVersion: folder.tags[1], current: false, pending: folder.tags, runs: [] });

    expect((await runCli([], env())).code).toBe(0);
    const after = await runCli(["status", "--json", "--require-current"], env());
    expect(after.code).toBe(0);
    const current = JSON.parse(after.stdout);
    expect(current).toMatchObject({ schemaVersion: folder.tags[1], current: true, pending: [] });
    expect(current.migrations.map((m: { state: string }) => m.state)).toEqual(["applied", "applied"]);
    expect(current.migrations[0].appliedAt).toEqual(expect.any(String));
    expect(current.runs[0]).toMatchObject({ status: "applied", applied: folder.tags });
  });

  it("logs one JSON status event without --json", async () => {
    const run = await runCli(["status"], env());
    expect(run.code).toBe(0);
    expect(only(run, "migration.status")).toMatchObject({ schemaVersion: folder.tags[1], current: true });
  });
});

describe("verify", () => {
  let db: TestDatabase;
  const env = () => ({ DATABASE_URL: db.url, MIGRATIONS_DIR: repoMigrations });

  beforeAll(async () => {
    db = await createTestDatabase("verify");
  });
  afterAll(() => db.drop());

  it("names pending migrations before anything is applied", async () => {
    const run = await runCli(["verify", "--json"], env());
    expect(run.code).toBe(4);
    expect(JSON.parse(run.stdout).problems.map((p: { kind: string }) => p.kind)).toEqual(["pending"]);
  });

  it("is clean on a freshly migrated database", async () => {
    expect((await runCli([], env())).code).toBe(0);
    const run = await runCli(["verify"], env());
    expect(run.code).toBe(0);
    expect(only(run, "migration.verify.finished")).toMatchObject({ clean: true, problems: 0 });
  });

  it("names a dropped index, an added column and a changed type made by hand", async () => {
    await db.query("DROP INDEX bookmarks_user_id_created_at_idx");
    await db.query("ALTER TABLE users ADD COLUMN nickname text");
    await db.query("ALTER TABLE sessions ALTER COLUMN token_hash TYPE varchar(64)");
    const run = await runCli(["verify"], env());
    expect(run.code).toBe(4);
    const problems = eventsNamed(run, "migration.verify.problem").map((e) => e.message);
    expect(problems).toHaveLength(3);
    expect(problems).toContainEqual("index bookmarks_user_id_created_at_idx on public.bookmarks is missing");
    expect(problems).toContainEqual("column public.users.nickname (text) exists but no migration creates it");
    expect(problems).toContainEqual(
      "column public.sessions.token_hash differs in type: database has character varying(64), migrations build text",
    );
  });

  it("names a replaced foreign key, and a unique constraint standing in for a unique index once", async () => {
    await db.query("ALTER TABLE bookmarks DROP CONSTRAINT bookmarks_user_id_users_id_fk");
    await db.query("ALTER TABLE bookmarks ADD CONSTRAINT fk_bookmarks_user FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE RESTRICT");
    await db.query("DROP INDEX bookmarks_user_id_url_key");
    await db.query("ALTER TABLE bookmarks ADD CONSTRAINT uq_bookmarks_user_url UNIQUE (user_id, url)");
    const run = await runCli(["verify"], env());
    const problems = eventsNamed(run, "migration.verify.problem").map((e) => e.message);
    expect(problems).toContainEqual("foreign key bookmarks_user_id_users_id_fk on public.bookmarks is missing");
    expect(problems).toContainEqual("foreign key fk_bookmarks_user on public.bookmarks exists but no migration creates it");
    expect(problems).toContainEqual(
      "index bookmarks_user_id_url_key on public.bookmarks exists as unique constraint uq_bookmarks_user_url on public.bookmarks instead (same definition)",
    );
    expect(problems.filter((p) => p.includes("uq_bookmarks_user_url"))).toHaveLength(1);
    expect(problems.filter((p) => p.includes("fk_bookmarks_user"))).toHaveLength(1);
  });

  it("compares the live schema of a folder without snapshots, through a scratch database", async () => {
    const folder = new MigrationsFolder([{ name: "plain", statements: ["CREATE TABLE plain (id int)"] }]);
    const other = await createTestDatabase("verify_plain");
    try {
      expect((await runCli([], { DATABASE_URL: other.url, MIGRATIONS_DIR: folder.dir })).code).toBe(0);
      const run = await runCli(["verify"], { DATABASE_URL: other.url, MIGRATIONS_DIR: folder.dir });
      expect(run.code).toBe(0);
      expect(only(run, "migration.verify.finished")).toMatchObject({ clean: true, comparison: "shadow", snapshot: null });
      await other.query("ALTER TABLE plain ADD COLUMN extra text");
      const drifted = await runCli(["verify"], { DATABASE_URL: other.url, MIGRATIONS_DIR: folder.dir });
      expect(drifted.code).toBe(4);
      expect(only(drifted, "migration.verify.problem").message).toBe("column public.plain.extra (text) exists but no migration creates it");
    } finally {
      await other.drop();
      folder.remove();
    }
  });

  it("names a checksum mismatch by file", async () => {
    await withClient(db.url, (c) => c.query("UPDATE drizzle.__drizzle_migrations SET hash = 'edited'"));
    const run = await runCli(["verify", "--json"], env());
    expect(run.code).toBe(4);
    const problems = JSON.parse(run.stdout).problems as Array<{ kind: string; message: string }>;
    expect(problems[0]).toMatchObject({ kind: "checksum" });
    expect(problems[0]?.message).toMatch(/_initial_schema\.sql: changed after it was applied/);
  });
});
