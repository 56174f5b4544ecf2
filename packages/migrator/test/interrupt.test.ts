import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../../test/support/database.js";
import {
  drizzleRows,
  eventually,
  lockHolderPid,
  only,
  runCli,
  startCli,
  tableExists,
  takeMigrationLock,
  withClient,
} from "./support/cli.js";
import { MigrationsFolder } from "./support/migrations.js";

// The long statement sleeps for the database-level setting yomu_test.sleep, so the same file (and
// hash) sleeps while the test interrupts it and runs straight through on the next run.
const folder = new MigrationsFolder([
  { name: "base", statements: ["CREATE TABLE base (id serial PRIMARY KEY);"] },
  {
    name: "slow",
    statements: [
      "CREATE TABLE half_a (id integer);",
      "INSERT INTO half_a VALUES (1);",
      "SELECT pg_sleep(coalesce(nullif(current_setting('yomu_test.sleep', true), ''), '0')::float8);",
    ],
  },
  { name: "after_slow", statements: ["CREATE TABLE half_b (id integer);"] },
]);
afterAll(() => folder.remove());

let db: TestDatabase;
beforeEach(async () => {
  db = await createTestDatabase("interrupt");
});
afterEach(async () => {
  await db.drop();
});

const env = () => ({ DATABASE_URL: db.url, MIGRATIONS_DIR: folder.dir });

async function setSleep(seconds: number) {
  await db.query(`ALTER DATABASE ${db.name} SET yomu_test.sleep = '${seconds}'`);
}

/** The runner's backend pid once its session is inside pg_sleep. */
function sleepingBackend(): Promise<number> {
  return eventually("the migration's pg_sleep to start", () =>
    withClient(db.url, async (client) => {
      const { rows } = await client.query<{ pid: number }>(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND state = 'active' AND query LIKE '%SELECT pg_sleep(coalesce%' AND pid <> pg_backend_pid() AND application_name LIKE 'yomu-migrate%'",
      );
      return rows[0]?.pid;
    }),
  );
}

async function backendGone(pid: number): Promise<true> {
  return eventually(`backend ${pid} to end`, () =>
    withClient(db.url, async (client) => {
      const { rows } = await client.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1", [pid]);
      return rows.length === 0 ? true : undefined;
    }),
  );
}

async function expectOnlyBaseApplied() {
  expect(await tableExists(db.url, "base")).toBe(true);
  expect(await tableExists(db.url, "half_a")).toBe(false);
  expect(await tableExists(db.url, "half_b")).toBe(false);
  expect((await drizzleRows(db.url)).map((r) => Number(r.created_at))).toEqual([folder.byName("base").when]);
}

async function applyBaseOnly() {
  // A journal holding only the first migration, over the same file, so its hash matches later.
  const first = new MigrationsFolder();
  first.add({ name: "base", statements: ["CREATE TABLE base (id serial PRIMARY KEY);"], when: folder.byName("base").when });
  const run = await runCli(["up"], { DATABASE_URL: db.url, MIGRATIONS_DIR: first.dir });
  first.remove();
  expect(run.code, run.stdout).toBe(0);
}

describe("a runner interrupted in the middle of a migration", () => {
  it("leaves nothing half-applied when killed with SIGKILL, and the next run succeeds", async () => {
    await applyBaseOnly();
    await setSleep(60);
    const runner = startCli(["up"], env());
    const backend = await sleepingBackend();
    expect(await lockHolderPid(db.url)).toBe(backend);
    runner.child.kill("SIGKILL");
    const killed = await runner.done;
    expect(killed.signal).toBe("SIGKILL");

    // PostgreSQL notices the vanished client (client_connection_check_interval), rolls the
    // transaction back and frees the session's advisory lock, with nobody cleaning up.
    await backendGone(backend);
    expect(await lockHolderPid(db.url)).toBeUndefined();
    await expectOnlyBaseApplied();

    await setSleep(0);
    const next = await runCli(["up", "--lock-wait-timeout", "5s"], env());
    expect(next.code, next.stdout).toBe(0);
    expect(only(next, "migration.run.finished")).toMatchObject({ status: "applied", applied: folder.tags.slice(1) });
    expect(await tableExists(db.url, "half_b")).toBe(true);
    expect((await db.query("SELECT id FROM half_a")).rows).toEqual([{ id: 1 }]);
    expect((await drizzleRows(db.url)).map((r) => Number(r.created_at))).toEqual(folder.migrations.map((m) => m.when));
  });

  it("on SIGTERM cancels the statement, rolls back, releases the lock, logs it and exits non-zero", async () => {
    await applyBaseOnly();
    await setSleep(60);
    const runner = startCli(["up"], env());
    const backend = await sleepingBackend();
    runner.child.kill("SIGTERM");
    const stopped = await runner.done;

    expect(stopped.signal).toBeNull();
    expect(stopped.code).toBe(1);
    expect(only(stopped, "migration.interrupted")).toMatchObject({ signal: "SIGTERM", severity: "WARNING" });
    expect(only(stopped, "migration.failed")).toMatchObject({ code: "INTERRUPTED", tag: folder.byName("slow").tag });
    expect(only(stopped, "migration.run.finished")).toMatchObject({ status: "failed", applied: [], schemaVersion: folder.tags[0] });
    // The lock went with the runner, not minutes later when the sleep would have ended.
    expect(await lockHolderPid(db.url)).toBeUndefined();
    await backendGone(backend);
    await expectOnlyBaseApplied();

    await setSleep(0);
    const next = await runCli(["up", "--lock-wait-timeout", "1s"], env());
    expect(next.code, next.stdout).toBe(0);
    expect(only(next, "migration.run.finished")).toMatchObject({ status: "applied", applied: folder.tags.slice(1) });
  });

  it("on SIGINT while waiting for the lock gives up at once without touching the schema", async () => {
    await withClient(db.url, async (holder) => {
      await takeMigrationLock(holder);
      const runner = startCli(["up", "--lock-wait-timeout", "60s"], env());
      await runner.waitFor("migration.lock.waiting");
      runner.child.kill("SIGINT");
      const stopped = await runner.done;
      expect(stopped.code).toBe(1);
      expect(only(stopped, "migration.interrupted").signal).toBe("SIGINT");
      expect(only(stopped, "migration.failed").code).toBe("INTERRUPTED");
    });
    expect(await drizzleRows(db.url)).toEqual([]);
  });

  // Regression: a SIGTERM during the backoff after a lock_timeout was reported as the lock
  // timeout itself (MIGRATION_FAILED, 55P03), not as the interruption it was.
  it("on SIGTERM between lock_timeout retries reports the interruption, not the lock timeout", async () => {
    await applyBaseOnly();
    await setSleep(0);
    await withClient(db.url, async (blocker) => {
      await blocker.query("BEGIN");
      await blocker.query("SELECT count(*) FROM base");
      const extra = new MigrationsFolder();
      extra.add({ name: "base", statements: ["CREATE TABLE base (id serial PRIMARY KEY);"], when: folder.byName("base").when });
      extra.add({ name: "alter_base", statements: ["ALTER TABLE base ADD COLUMN note text;"] });
      try {
        const runner = startCli(["up", "--lock-timeout", "200ms", "--lock-retries", "5"], {
          DATABASE_URL: db.url,
          MIGRATIONS_DIR: extra.dir,
        });
        await runner.waitFor("migration.lock_timeout.retry");
        runner.child.kill("SIGTERM");
        const stopped = await runner.done;
        expect(stopped.code).toBe(1);
        expect(only(stopped, "migration.failed")).toMatchObject({ code: "INTERRUPTED", tag: extra.tags[1] });
        expect(only(stopped, "migration.run.finished").status).toBe("failed");
      } finally {
        extra.remove();
        await blocker.query("ROLLBACK");
      }
    });
    expect(await lockHolderPid(db.url)).toBeUndefined();
    expect((await drizzleRows(db.url)).map((r) => Number(r.created_at))).toEqual([folder.byName("base").when]);
  });
});
