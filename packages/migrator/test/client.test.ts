import { writeFileSync } from "node:fs";
import pg from "pg";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../../test/support/database.js";
import { lintPending, MigratorError, planLocks, readStatus, rollBack, runMigrations, verify } from "../src/index.js";
import { lockHolderPid, releaseMigrationLock, takeMigrationLock, withClient } from "./support/cli.js";
import { MigrationsFolder } from "./support/migrations.js";

// Issue 17 item 2: every function that connects takes a connected client instead of a URL, in
// process. The client is the caller's: used as it is, never ended, and left as it was found.
let db: TestDatabase;
let folder: MigrationsFolder;
let client: pg.Client;

beforeEach(async () => {
  db = await createTestDatabase("client");
  folder = new MigrationsFolder([
    { name: "create_notes", statements: ["CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL)"] },
    { name: "add_tags", statements: ["ALTER TABLE notes ADD COLUMN tags text[] DEFAULT '{}' NOT NULL"] },
  ]);
  writeFileSync(folder.byName("add_tags").file.replace(/\.sql$/, ".down.sql"), "ALTER TABLE notes DROP COLUMN tags;\n");
  client = new pg.Client({ connectionString: db.url, application_name: "the caller's app" });
  await client.connect();
  await client.query("SET lock_timeout = '7s'");
});
afterEach(async () => {
  await client.end();
  await db.drop();
  folder.remove();
});

/** The caller's session after a call: still open, still its own settings, no lock left behind. */
async function expectLeftAsFound(): Promise<void> {
  const { rows } = await client.query(
    "SELECT current_setting('lock_timeout') AS lock_timeout, current_setting('statement_timeout') AS st, current_setting('application_name') AS app",
  );
  expect(rows[0]).toEqual({ lock_timeout: "7s", st: "0", app: "the caller's app" });
  expect(await lockHolderPid(db.url)).toBeUndefined();
}

describe("a caller's connected client", () => {
  it("runMigrations applies on it, under the lock, records the run, and leaves it open and as it was", async () => {
    const result = await runMigrations({ client, dir: folder.dir, lockTimeoutMs: 250, statementTimeoutMs: 60_000 });
    expect(result.error, result.error?.message).toBeUndefined();
    expect(result.applied).toEqual(folder.tags);
    await expectLeftAsFound();
    const runs = await client.query("SELECT status, applied FROM drizzle.migration_runs");
    expect(runs.rows).toEqual([{ status: "applied", applied: folder.tags }]);
    expect((await runMigrations({ client, dir: folder.dir })).status).toBe("noop");
  });

  it("runMigrations still waits for the migration lock another session holds, and gives up with exit 3", async () => {
    await withClient(db.url, async (holder) => {
      await takeMigrationLock(holder);
      const result = await runMigrations({ client, dir: folder.dir, lockWaitTimeoutMs: 300 });
      expect(result.error?.code).toBe("LOCK_TIMEOUT");
      expect(result.error?.exitCode).toBe(3);
      expect(result.applied).toEqual([]);
      await releaseMigrationLock(holder);
    });
    expect((await client.query("SELECT to_regclass('notes') AS t")).rows[0].t).toBeNull();
    await expectLeftAsFound();
  });

  it("readStatus, verify and lintPending read through it", async () => {
    const before = await readStatus({ client, dir: folder.dir });
    expect(before.pending).toEqual(folder.tags);
    const pending = await lintPending({ client, dir: folder.dir });
    expect(pending.files).toEqual(folder.migrations.map((m) => m.file));
    expect((await runMigrations({ client, dir: folder.dir })).status).toBe("applied");
    const after = await readStatus({ client, dir: folder.dir });
    expect(after).toMatchObject({ current: true, pending: [], schemaVersion: folder.tags[1] });
    expect((await lintPending({ client, dir: folder.dir })).files).toEqual([]);
    const verified = await verify({ client, dir: folder.dir });
    expect(verified.problems).toEqual([]);
    expect(verified.schemaVersion).toBe(folder.tags[1]);
    await expectLeftAsFound();
  });

  it("rollBack rolls back on it", async () => {
    expect((await runMigrations({ client, dir: folder.dir })).status).toBe("applied");
    const result = await rollBack({ client, dir: folder.dir, steps: 1 });
    expect(result.error, result.error?.message).toBeUndefined();
    expect(result.rolledBack).toEqual([folder.tags[1]]);
    const columns = await client.query("SELECT column_name FROM information_schema.columns WHERE table_name = 'notes' ORDER BY 1");
    expect(columns.rows.map((r) => r.column_name)).toEqual(["body", "id"]);
    await expectLeftAsFound();
  });

  it("planLocks reads what is pending through it and builds its copy on the client's server", async () => {
    expect((await runMigrations({ client, dir: folder.dir, include: (m) => m.tag === folder.tags[0] })).status).toBe("applied");
    const plan = await planLocks({ client, dir: folder.dir });
    expect(plan.migrations.map((m) => m.tag)).toEqual([folder.tags[1]]);
    expect(plan.migrations[0]?.statements[0]?.locks.map((l) => l.mode)).toContain("AccessExclusiveLock");
    expect((await client.query("SELECT current_setting('transaction_read_only') AS ro")).rows[0].ro).toBe("off");
    await expectLeftAsFound();
  });

  it("neither a URL nor a client, or both, is a usage error naming them", async () => {
    await expect(readStatus({ dir: folder.dir })).rejects.toThrow(/exactly one of databaseUrl and client/);
    await expect(verify({ client, databaseUrl: db.url, dir: folder.dir })).rejects.toBeInstanceOf(MigratorError);
  });
});

describe("the library in process (tests that need no process of their own)", () => {
  let shared: TestDatabase;
  beforeAll(async () => {
    shared = await createTestDatabase("client_url");
  });
  afterAll(() => shared.drop());

  it("a URL still works, and its connection is closed afterwards", async () => {
    const result = await runMigrations({ databaseUrl: shared.url, dir: folder.dir, host: "in-process" });
    expect(result.applied).toEqual(folder.tags);
    const open = await shared.query(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'yomu-migrate%'",
    );
    expect(open.rows[0]).toEqual({ n: 0 });
  });
});
