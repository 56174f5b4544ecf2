import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { adminUrl, createTestDatabase, type TestDatabase } from "../../../test/support/database.js";
import { type CliRun, drizzleRows, lockHolderPid, only, runCli, startCli, tableExists } from "./support/cli.js";
import { MigrationsFolder } from "./support/migrations.js";
import { type PgBouncer, startPgBouncer } from "./support/pgbouncer.js";

// Regression (issue 15, finding 1): through PgBouncer in transaction pooling, three runners
// started 0.3 s apart all "got the lock" and drizzle's table ended with 18 rows for 10 hashes.
const folder = new MigrationsFolder([
  { name: "create_widgets", statements: ["CREATE TABLE widgets (id serial PRIMARY KEY, name text NOT NULL);"] },
  { name: "nap", statements: ["SELECT pg_sleep(0.3);", "ALTER TABLE widgets ADD COLUMN size integer;"] },
  { name: "seed", statements: ["INSERT INTO widgets (name, size) VALUES ('a', 1);"] },
]);
afterAll(() => folder.remove());

function expectRefused(run: CliRun) {
  expect(run.code, run.stdout + run.stderr).toBe(2);
  const failed = only(run, "migration.failed");
  expect(failed.code).toBe("POOLED_CONNECTION");
  expect(failed.message).toMatch(/does not stay one database session/);
  expect(failed.message).toContain("nothing was applied");
  expect(failed.hint).toMatch(/connect directly to PostgreSQL, or through a pooler in session mode/);
  expect(only(run, "migration.run.finished")).toMatchObject({ status: "failed", applied: [] });
}

describe("through PgBouncer in transaction pooling", () => {
  let bouncer: PgBouncer;
  let db: TestDatabase;
  beforeAll(async () => {
    bouncer = await startPgBouncer(adminUrl(), "transaction");
    db = await createTestDatabase("pool_tx");
  });
  afterAll(async () => {
    await bouncer.stop();
    await db.drop();
  });

  it("refuses before any DDL with exit 2, leaving drizzle's table and the schema untouched", async () => {
    const run = await runCli(["up"], { DATABASE_URL: bouncer.through(db.url), MIGRATIONS_DIR: folder.dir });
    expectRefused(run);
    expect(await drizzleRows(db.url)).toEqual([]);
    expect(await tableExists(db.url, "widgets")).toBe(false);
    // No lock left behind on a pooled server connection: a direct run goes straight through.
    expect(await lockHolderPid(db.url)).toBeUndefined();
    const direct = await runCli(["up", "--lock-wait-timeout", "5s"], { DATABASE_URL: db.url, MIGRATIONS_DIR: folder.dir });
    expect(direct.code, direct.stdout).toBe(0);
    expect(await drizzleRows(db.url)).toHaveLength(3);
  });

  it("refuses every one of several runners started at once, and records each refusal", async () => {
    const fresh = await createTestDatabase("pool_tx_many");
    try {
      // Three 0.3 s apart as in the report, and three at the same moment, against a pool of four servers.
      const runners = [0, 0, 0, 0, 1, 2].map(async (i) => {
        await new Promise((resolve) => setTimeout(resolve, i * 300));
        return startCli(["up"], { DATABASE_URL: bouncer.through(fresh.url), MIGRATIONS_DIR: folder.dir }).done;
      });
      for (const run of await Promise.all(runners)) expectRefused(run);
      expect(await drizzleRows(fresh.url)).toEqual([]);
      expect(await tableExists(fresh.url, "widgets")).toBe(false);
      const rows = await fresh.query<{ status: string; error_code: string }>("SELECT status, error_code FROM drizzle.migration_runs");
      expect(rows.rows).toHaveLength(6);
      expect(rows.rows.every((r) => r.status === "failed" && r.error_code === "POOLED_CONNECTION")).toBe(true);
    } finally {
      await fresh.drop();
    }
  });
});

describe("through PgBouncer in session pooling", () => {
  let bouncer: PgBouncer;
  let db: TestDatabase;
  beforeAll(async () => {
    bouncer = await startPgBouncer(adminUrl(), "session");
    db = await createTestDatabase("pool_session");
  });
  afterAll(async () => {
    await bouncer.stop();
    await db.drop();
  });

  it("migrates exactly once with several runners at once", async () => {
    const env = { DATABASE_URL: bouncer.through(db.url), MIGRATIONS_DIR: folder.dir };
    const runs = await Promise.all([0, 1, 2].map(() => runCli(["up", "--lock-wait-timeout", "30s"], env)));
    for (const run of runs) expect(run.code, run.stdout + run.stderr).toBe(0);
    const statuses = runs.map((r) => only(r, "migration.run.finished").status).sort();
    expect(statuses).toEqual(["applied", "noop", "noop"]);
    const rows = await drizzleRows(db.url);
    expect(rows).toHaveLength(3);
    expect(new Set(rows.map((r) => r.hash)).size).toBe(3);
    expect((await db.query("SELECT count(*)::int AS n FROM widgets")).rows[0]).toEqual({ n: 1 });
  });
});
