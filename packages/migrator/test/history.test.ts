import { appendFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../../test/support/database.js";
import { runMigrations } from "../src/index.js";
import {
  eventsNamed,
  eventually,
  lockHolderPid,
  only,
  releaseMigrationLock,
  runCli,
  startCli,
  takeMigrationLock,
  withClient,
} from "./support/cli.js";
import { MigrationsFolder } from "./support/migrations.js";

// Regressions (issue 15, finding 4): runs that reached the database but left no row, summaries
// that stated what the run never read, "slow" that counted the lock wait, a `<pid>` placeholder
// in the lock-timeout hint, and `status` calling a database with a changed file "up to date".

let db: TestDatabase;
let folder: MigrationsFolder;
beforeEach(async () => {
  db = await createTestDatabase("history");
  folder = new MigrationsFolder([
    { name: "create_notes", statements: ["CREATE TABLE notes (id serial PRIMARY KEY, body text);"] },
    { name: "add_tags", statements: ["ALTER TABLE notes ADD COLUMN tags text[];"] },
  ]);
});
afterEach(async () => {
  await db.drop();
  folder.remove();
});

const env = () => ({ DATABASE_URL: db.url, MIGRATIONS_DIR: folder.dir, POD_NAME: "history-pod" });

interface Row {
  status: string;
  error_code: string | null;
  error: string | null;
  from_version: string | null;
  to_version: string | null;
  applied: string[];
  host: string;
  finished_at: Date | null;
}

async function runs(): Promise<Row[]> {
  const { rows } = await db.query<Row>("SELECT * FROM drizzle.migration_runs ORDER BY started_at");
  return rows;
}

describe("every run that reached the database leaves a row", () => {
  it("a journal error on a migrated database: a row, and a summary that claims no version", async () => {
    expect((await runCli(["up"], env())).code).toBe(0);
    writeFileSync(join(folder.dir, "meta", "_journal.json"), "{ not json");
    const run = await runCli(["up"], env());
    expect(run.code).toBe(2);
    expect(only(run, "migration.failed").code).toBe("JOURNAL_INVALID");
    const finished = only(run, "migration.run.finished");
    expect(finished).toMatchObject({ status: "failed", schemaRead: false, schemaVersion: null });
    expect(finished.message).toBe("migration run failed before reading the schema; nothing was changed");
    expect(finished.message).not.toContain("(empty)");
    const last = (await runs()).at(-1);
    expect(last).toMatchObject({ status: "failed", error_code: "JOURNAL_INVALID", host: "history-pod" });
    expect(last?.finished_at).not.toBeNull();
  });

  it("a lock timeout on a fresh database: a row, and a hint naming the holder's real pid", async () => {
    await withClient(db.url, async (holder) => {
      await takeMigrationLock(holder);
      const { rows } = await holder.query<{ pid: number }>("SELECT pg_backend_pid() AS pid");
      const run = await runCli(["up", "--lock-wait-timeout", "300ms"], env());
      expect(run.code).toBe(3);
      const failed = only(run, "migration.failed");
      expect(failed.code).toBe("LOCK_TIMEOUT");
      expect(failed.hint).toContain(`WHERE pid = ${rows[0]?.pid}`);
      expect(failed.hint).not.toContain("<pid>");
      expect(only(run, "migration.run.finished").message).toBe("migration run failed before reading the schema; nothing was changed");
    });
    expect(await runs()).toMatchObject([{ status: "failed", error_code: "LOCK_TIMEOUT", applied: [] }]);
  });

  it("a statement timeout during set-up: a row once the table is free again", async () => {
    expect((await runCli(["up"], env())).code).toBe(0);
    await withClient(db.url, async (blocker) => {
      await blocker.query("BEGIN");
      await blocker.query("LOCK TABLE drizzle.migration_runs IN ACCESS EXCLUSIVE MODE");
      const runner = startCli(["up", "--statement-timeout", "300ms", "--lock-timeout", "5s"], env());
      // The set-up statement times out; the row is written with bounds of its own and waits for the table.
      await eventually("the runner to wait to record its run", () =>
        withClient(db.url, async (client) => {
          const { rows } = await client.query(
            "SELECT 1 FROM pg_stat_activity WHERE application_name = 'yomu-migrate history-pod' AND wait_event_type = 'Lock' AND query LIKE '%INSERT INTO%migration_runs%'",
          );
          return rows.length > 0 ? true : undefined;
        }),
      );
      await blocker.query("COMMIT");
      const run = await runner.done;
      expect(run.code).toBe(1);
      const failed = only(run, "migration.failed");
      expect(failed.message).toMatch(/^up failed during session set-up: canceling statement due to statement timeout/);
      expect(failed.message).toContain("this run left nothing applied");
      expect(failed.hint).toContain("--statement-timeout");
    });
    expect((await runs()).at(-1)).toMatchObject({ status: "failed", error_code: "MIGRATION_FAILED" });
  });

  it("down refused for a missing down file: a row, and a summary saying nothing was attempted", async () => {
    expect((await runCli(["up"], env())).code).toBe(0);
    const run = await runCli(["down", "--steps", "1"], env());
    expect(run.code).toBe(1);
    expect(only(run, "migration.failed").code).toBe("DOWN_UNAVAILABLE");
    const finished = only(run, "migration.run.finished");
    expect(finished.message).toBe(`rollback refused before changing anything; schema at ${folder.tags[1]}`);
    expect(finished).toMatchObject({ command: "down", status: "failed", rolledBack: [], schemaVersion: folder.tags[1] });
    expect((await runs()).at(-1)).toMatchObject({ status: "failed", error_code: "DOWN_UNAVAILABLE", from_version: folder.tags[1] });
  });

  it("down whose file fails: a row with the error, in the same shape as up's", async () => {
    expect((await runCli(["up"], env())).code).toBe(0);
    writeFileSync(folder.byName("add_tags").file.replace(/\.sql$/, ".down.sql"), "ALTER TABLE notes DROP COLUMN no_such;\n");
    const run = await runCli(["down", "--steps", "1"], env());
    expect(run.code).toBe(1);
    const failed = only(run, "migration.failed");
    expect(failed).toMatchObject({ command: "down", code: "MIGRATION_FAILED", tag: folder.tags[1], statement: 1, sqlstate: "42703" });
    expect(only(run, "migration.run.finished").message).toBe(`rollback failed; nothing was changed, schema at ${folder.tags[1]}`);
    const last = (await runs()).at(-1);
    expect(last).toMatchObject({ status: "failed", error_code: "MIGRATION_FAILED", to_version: folder.tags[1], host: "history-pod" });
    expect(last?.error).toContain("no_such");
  });
});

describe("what a run reports", () => {
  it("does not call a run slow for the time it waited for the lock", async () => {
    await withClient(db.url, async (holder) => {
      await takeMigrationLock(holder);
      // A threshold far above what two tiny migrations take even on a loaded machine, and a wait above it.
      const runner = startCli(["up", "--slow-threshold", "2s", "--lock-wait-timeout", "30s"], env());
      await runner.waitFor("migration.lock.waiting");
      await new Promise((resolve) => setTimeout(resolve, 2500));
      await releaseMigrationLock(holder);
      const run = await runner.done;
      expect(run.code).toBe(0);
      const finished = only(run, "migration.run.finished");
      expect(finished.lockWaitMs as number).toBeGreaterThan(2000);
      expect(finished.applyMs as number).toBeLessThan(finished.durationMs as number);
      expect(eventsNamed(run, "migration.slow")).toEqual([]);
    });
  });

  it("status --require-current exits 4 when an applied file has changed", async () => {
    expect((await runCli(["up"], env())).code).toBe(0);
    appendFileSync(folder.byName("create_notes").file, "-- edited after it was applied\n");
    const run = await runCli(["status", "--json", "--require-current"], env());
    expect(run.code).toBe(4);
    const state = JSON.parse(run.stdout);
    expect(state.current).toBe(false);
    expect(state.problems[0]).toMatch(/create_notes\.sql: changed after it was applied/);
    const plain = await runCli(["status"], env());
    expect(plain.code).toBe(0);
    expect(only(plain, "migration.status").message).toBe("1 applied file(s) changed or out of order");
  });
});

describe("the row's text is stored as it was said", () => {
  // The final row is written as literals in one round trip (issue 17 item 5): quotes and backslashes
  // must arrive unchanged.
  it("an error quoting a value with ' and \\ in it", async () => {
    folder.add({ name: "quote's", statements: ["SELECT 'it''s a \\ back\\slash'::int;"] });
    const result = await runMigrations({ databaseUrl: db.url, dir: folder.dir, host: "o'brien \\ host" });
    expect(result.error?.code).toBe("MIGRATION_FAILED");
    const row = (await runs()).at(-1);
    expect(row?.error).toBe(result.error?.message);
    expect(row?.error).toContain(`"it's a \\ back\\slash"`);
    expect(row?.host).toBe("o'brien \\ host");
    expect(row?.applied).toEqual([]);
  });

  it("applied tags, in order, and the run counts read back with the row", async () => {
    const result = await runMigrations({ databaseUrl: db.url, dir: folder.dir });
    expect(result.runCounts).toEqual({ applied: 1 });
    expect((await runs()).at(-1)?.applied).toEqual(folder.tags);
    const again = await runMigrations({ databaseUrl: db.url, dir: folder.dir });
    expect(again.runCounts).toEqual({ applied: 1, noop: 1 });
  });
});

describe("the run is recorded before the lock is released", () => {
  // Regression (issue 17): the row was written after the unlock, so the runner that got the lock
  // next could find it still `running` and mark a run that succeeded as crashed.
  it("so whoever gets the lock next finds the previous run's row finished", async () => {
    folder.add({ name: "nap", statements: ["SELECT pg_sleep(0.5);"] });
    const first = startCli(["up"], env());
    await first.waitFor("migration.plan");
    const seen = await withClient(db.url, async (observer) => {
      // Reads the history inside the server the moment the lock is granted, before the runner
      // could send another statement.
      await observer.query(`CREATE FUNCTION pg_temp.lock_then_read() RETURNS text LANGUAGE plpgsql AS $$
        BEGIN
          PERFORM pg_advisory_lock(2037345653, 1);
          RETURN (SELECT string_agg(status, ',' ORDER BY started_at) FROM drizzle.migration_runs);
        END $$`);
      const { rows } = await observer.query<{ statuses: string }>("SELECT pg_temp.lock_then_read() AS statuses");
      await releaseMigrationLock(observer);
      return rows[0]?.statuses;
    });
    expect(seen).toBe("applied");
    expect((await first.done).code).toBe(0);
  });
});

describe("down under a signal", () => {
  it("on SIGTERM cancels the down file, rolls back nothing, records the run and releases the lock", async () => {
    expect((await runCli(["up"], env())).code).toBe(0);
    writeFileSync(
      folder.byName("add_tags").file.replace(/\.sql$/, ".down.sql"),
      "ALTER TABLE notes DROP COLUMN tags;\n--> statement-breakpoint\nSELECT pg_sleep(60);\n",
    );
    const runner = startCli(["down", "--steps", "1"], env());
    await eventually("the down file's pg_sleep", () =>
      withClient(db.url, async (client) => {
        const { rows } = await client.query(
          "SELECT 1 FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()",
        );
        return rows.length > 0 ? true : undefined;
      }),
    );
    runner.child.kill("SIGTERM");
    const run = await runner.done;
    expect(run.code).toBe(1);
    expect(only(run, "migration.interrupted").signal).toBe("SIGTERM");
    expect(only(run, "migration.failed")).toMatchObject({ command: "down", code: "INTERRUPTED", tag: folder.tags[1] });
    expect(await lockHolderPid(db.url)).toBeUndefined();
    const columns = await db.query("SELECT 1 FROM information_schema.columns WHERE table_name = 'notes' AND column_name = 'tags'");
    expect(columns.rowCount).toBe(1);
    expect((await runs()).at(-1)).toMatchObject({ status: "failed", error_code: "INTERRUPTED" });
  });
});
