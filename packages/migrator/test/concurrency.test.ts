import { afterAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../../test/support/database.js";
import {
  type CliRun,
  drizzleRows,
  eventsNamed,
  only,
  releaseMigrationLock,
  runCli,
  startCli,
  takeMigrationLock,
  withClient,
} from "./support/cli.js";
import { MigrationsFolder } from "./support/migrations.js";

const RUNNERS = 20;

// Every migration writes a row into `side_effects`, so running one twice shows up as a duplicate
// even if drizzle's table were to look right.
const folder = new MigrationsFolder([
  {
    name: "create_tables",
    statements: [
      "CREATE TABLE side_effects (id serial PRIMARY KEY, migration text NOT NULL);",
      "CREATE TABLE widgets (id serial PRIMARY KEY, name text NOT NULL);",
      "INSERT INTO side_effects (migration) VALUES ('create_tables');",
    ],
  },
  {
    name: "add_size",
    // The sleep keeps the lock held long enough that the other runners are still waiting for it.
    statements: [
      "ALTER TABLE widgets ADD COLUMN size integer;",
      "SELECT pg_sleep(0.5);",
      "INSERT INTO side_effects (migration) VALUES ('add_size');",
    ],
  },
  {
    name: "seed_widgets",
    statements: [
      "INSERT INTO widgets (name, size) VALUES ('a', 1), ('b', 2);",
      "INSERT INTO side_effects (migration) VALUES ('seed_widgets');",
    ],
  },
  {
    name: "widgets_name_index",
    header: "-- yomu:no-transaction",
    statements: [
      "CREATE INDEX CONCURRENTLY widgets_name_idx ON widgets (name);",
      "INSERT INTO side_effects (migration) VALUES ('widgets_name_index');",
    ],
  },
]);

const databases: TestDatabase[] = [];
afterAll(async () => {
  for (const db of databases) await db.drop();
  folder.remove();
});

async function freshDatabase(): Promise<TestDatabase> {
  const db = await createTestDatabase("concurrency");
  databases.push(db);
  return db;
}

function env(db: TestDatabase) {
  return { DATABASE_URL: db.url, MIGRATIONS_DIR: folder.dir };
}

async function expectExactlyOnce(db: TestDatabase, runs: CliRun[]) {
  for (const run of runs) {
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.otherLines).toEqual([]);
  }
  const finished = runs.map((run) => only(run, "migration.run.finished"));
  const appliers = finished.filter((f) => f.status === "applied");
  expect(appliers).toHaveLength(1);
  expect(appliers[0]?.applied).toEqual(folder.tags);
  expect(finished.filter((f) => f.status === "noop")).toHaveLength(RUNNERS - 1);
  // Every runner, including those that only waited, ends up reporting the complete schema.
  for (const f of finished) expect(f.schemaVersion).toBe(folder.tags.at(-1));
  expect(runs.flatMap((run) => eventsNamed(run, "migration.applied")).map((e) => e.tag)).toEqual(folder.tags);

  const rows = await drizzleRows(db.url);
  expect(rows.map((r) => Number(r.created_at))).toEqual(folder.migrations.map((m) => m.when));
  expect(new Set(rows.map((r) => r.hash)).size).toBe(folder.migrations.length);
  const effects = await db.query<{ migration: string; n: number }>(
    "SELECT migration, count(*)::int AS n FROM side_effects GROUP BY migration ORDER BY min(id)",
  );
  expect(effects.rows).toEqual([
    { migration: "create_tables", n: 1 },
    { migration: "add_size", n: 1 },
    { migration: "seed_widgets", n: 1 },
    { migration: "widgets_name_index", n: 1 },
  ]);
  expect((await db.query("SELECT name FROM widgets ORDER BY name")).rows).toEqual([{ name: "a" }, { name: "b" }]);
}

describe(`${RUNNERS} runners at once on a fresh database`, () => {
  for (const round of [1, 2, 3]) {
    it(`apply every migration exactly once (database ${round} of 3)`, { timeout: 120_000 }, async () => {
      const db = await freshDatabase();
      const runs = await Promise.all(Array.from({ length: RUNNERS }, () => runCli(["up", "--lock-wait-timeout", "60s"], env(db))));
      await expectExactlyOnce(db, runs);
    });
  }

  it("apply every migration exactly once when all are released at the same instant", { timeout: 120_000 }, async () => {
    const db = await freshDatabase();
    // Holding the lock from the test lines every runner up behind it, so all twenty race for it
    // the moment it is released, not in the order they happened to start.
    await withClient(db.url, async (holder) => {
      await takeMigrationLock(holder);
      const running = Array.from({ length: RUNNERS }, () => startCli(["up", "--lock-wait-timeout", "60s"], env(db)));
      await Promise.all(running.map((r) => r.waitFor("migration.lock.waiting")));
      await releaseMigrationLock(holder);
      const runs = await Promise.all(running.map((r) => r.done));
      await expectExactlyOnce(db, runs);
      for (const run of runs) expect(only(run, "migration.lock.waiting").pid).toBe((holder as unknown as { processID: number }).processID);
    });
  });
});
