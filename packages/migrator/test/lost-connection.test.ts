import { writeFileSync } from "node:fs";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../../test/support/database.js";
import { type CliRun, drizzleRows, eventually, only, runCli, startCli, tableExists, takeMigrationLock, withClient } from "./support/cli.js";
import { MigrationsFolder } from "./support/migrations.js";

// Regression (issue 15, finding 2): pg_terminate_backend on the runner mid-apply gave exit 1
// (MIGRATION_FAILED, "fix the migration"), which the Job does not retry; during the lock wait it
// gave exit 1 with "Client has encountered a connection error and is not queryable".

let db: TestDatabase;
beforeEach(async () => {
  db = await createTestDatabase("lost");
});
afterEach(async () => {
  await db.drop();
});

const POD = "lost-conn-pod";

/** The backend of the runner's own session (not its progress or cancel connections). */
function runnerBackend(applicationName: string, running?: string): Promise<number> {
  return eventually(`the runner's backend${running ? ` running ${running}` : ""}`, () =>
    withClient(db.url, async (client) => {
      const { rows } = await client.query<{ pid: number }>(
        `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1
            AND ($2::text IS NULL OR (state = 'active' AND query LIKE '%' || $2 || '%'))`,
        [applicationName, running ?? null],
      );
      return rows[0]?.pid;
    }),
  );
}

async function terminate(pid: number): Promise<void> {
  await withClient(db.url, (client) => client.query("SELECT pg_terminate_backend($1)", [pid]));
}

function expectLost(run: CliRun, during: RegExp, left: RegExp) {
  expect(run.code, run.stdout + run.stderr).toBe(7);
  const failed = only(run, "migration.failed");
  expect(failed.code).toBe("CONNECTION_LOST");
  expect(failed.message).toMatch(/^the connection to the database was lost during /);
  expect(failed.message).toMatch(during);
  expect(failed.message).toMatch(left);
  expect(failed.hint).toMatch(/run again/);
  expect(only(run, "migration.run.finished").status).toBe("failed");
}

async function lastRun(): Promise<{ status: string; error_code: string | null; applied: string[] }> {
  const { rows } = await db.query("SELECT status, error_code, applied FROM drizzle.migration_runs ORDER BY started_at DESC LIMIT 1");
  return rows[0] as { status: string; error_code: string | null; applied: string[] };
}

describe("up, when the server ends the runner's session", () => {
  it("mid-apply exits 7, says nothing was applied, and records the run", async () => {
    const folder = new MigrationsFolder([
      { name: "first", statements: ["CREATE TABLE first (id int);"] },
      { name: "sleepy", statements: ["CREATE TABLE sleepy (id int);", "SELECT pg_sleep(60);"] },
    ]);
    try {
      const runner = startCli(["up"], { DATABASE_URL: db.url, MIGRATIONS_DIR: folder.dir, POD_NAME: POD });
      await terminate(await runnerBackend(`yomu-migrate ${POD}`, "pg_sleep(60)"));
      const run = await runner.done;
      expectLost(run, new RegExp(`statement 2 of ${folder.tags[1]}`), /this run left nothing applied/);
      expect(await drizzleRows(db.url)).toEqual([]);
      expect(await tableExists(db.url, "first")).toBe(false);
      expect(await lastRun()).toMatchObject({ status: "failed", error_code: "CONNECTION_LOST", applied: [] });
    } finally {
      folder.remove();
    }
  });

  it("after a no-transaction file names that file as applied", async () => {
    const folder = new MigrationsFolder([
      { name: "base", statements: ["CREATE TABLE base (id int);"] },
      { name: "base_index", header: "-- yomu:no-transaction", statements: ["CREATE INDEX CONCURRENTLY base_id_idx ON base (id);"] },
      { name: "sleepy", statements: ["SELECT pg_sleep(60);"] },
    ]);
    try {
      const runner = startCli(["up"], { DATABASE_URL: db.url, MIGRATIONS_DIR: folder.dir, POD_NAME: POD });
      await terminate(await runnerBackend(`yomu-migrate ${POD}`, "pg_sleep(60)"));
      const run = await runner.done;
      const done = `${folder.tags[0]}, ${folder.tags[1]}`;
      expectLost(run, new RegExp(`statement 1 of ${folder.tags[2]}`), new RegExp(`this run left ${done} applied`));
      expect(await drizzleRows(db.url)).toHaveLength(2);
      expect(await lastRun()).toMatchObject({ status: "failed", error_code: "CONNECTION_LOST", applied: folder.tags.slice(0, 2) });
    } finally {
      folder.remove();
    }
  });

  it("while waiting for the lock exits 7 naming the wait", async () => {
    const folder = new MigrationsFolder([{ name: "first", statements: ["CREATE TABLE first (id int);"] }]);
    try {
      await withClient(db.url, async (holder) => {
        await takeMigrationLock(holder);
        const runner = startCli(["up", "--lock-wait-timeout", "60s"], { DATABASE_URL: db.url, MIGRATIONS_DIR: folder.dir, POD_NAME: POD });
        await runner.waitFor("migration.lock.waiting");
        await terminate(await runnerBackend(`yomu-migrate ${POD}`));
        const run = await runner.done;
        expectLost(run, /during the wait for the migration lock/, /this run left nothing applied/);
      });
      expect(await drizzleRows(db.url)).toEqual([]);
    } finally {
      folder.remove();
    }
  });
});

describe("down, when the server ends the runner's session", () => {
  it("mid-rollback exits 7 and rolls back nothing", async () => {
    const folder = new MigrationsFolder([{ name: "first", statements: ["CREATE TABLE first (id int);"] }]);
    writeFileSync(
      folder.byName("first").file.replace(/\.sql$/, ".down.sql"),
      "DROP TABLE first;\n--> statement-breakpoint\nSELECT pg_sleep(60);\n",
    );
    try {
      expect((await runCli(["up"], { DATABASE_URL: db.url, MIGRATIONS_DIR: folder.dir })).code).toBe(0);
      const runner = startCli(["down", "--steps", "1"], { DATABASE_URL: db.url, MIGRATIONS_DIR: folder.dir, POD_NAME: POD });
      await terminate(await runnerBackend(`yomu-migrate down ${POD}`, "pg_sleep(60)"));
      const run = await runner.done;
      expectLost(run, new RegExp(`statement 2 of ${folder.tags[0]}`), /this run left nothing rolled back/);
      expect(await tableExists(db.url, "first")).toBe(true);
      expect(await drizzleRows(db.url)).toHaveLength(1);
      expect(await lastRun()).toMatchObject({ status: "failed", error_code: "CONNECTION_LOST" });
    } finally {
      folder.remove();
    }
  });

  it("while waiting for the lock exits 7 naming the wait", async () => {
    const folder = new MigrationsFolder([{ name: "first", statements: ["CREATE TABLE first (id int);"] }]);
    writeFileSync(folder.byName("first").file.replace(/\.sql$/, ".down.sql"), "DROP TABLE first;\n");
    try {
      expect((await runCli(["up"], { DATABASE_URL: db.url, MIGRATIONS_DIR: folder.dir })).code).toBe(0);
      await withClient(db.url, async (holder) => {
        await takeMigrationLock(holder);
        const runner = startCli(["down", "--steps", "1", "--lock-wait-timeout", "60s"], {
          DATABASE_URL: db.url,
          MIGRATIONS_DIR: folder.dir,
          POD_NAME: POD,
        });
        await runner.waitFor("migration.lock.waiting");
        await terminate(await runnerBackend(`yomu-migrate down ${POD}`));
        const run = await runner.done;
        expectLost(run, /during the wait for the migration lock/, /this run left nothing rolled back/);
      });
      expect(await tableExists(db.url, "first")).toBe(true);
    } finally {
      folder.remove();
    }
  });
});
