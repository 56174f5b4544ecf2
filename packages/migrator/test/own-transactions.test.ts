import { drizzle } from "drizzle-orm/node-postgres";
import { migrate } from "drizzle-orm/node-postgres/migrator";
import pg from "pg";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { readCatalog } from "../../../test/support/catalog.js";
import { createTestDatabase, type TestDatabase } from "../../../test/support/database.js";
import { drizzleRows, eventsNamed, eventually, only, runCli, startCli, tableExists, withClient } from "./support/cli.js";
import { MigrationsFolder, positionOf } from "./support/migrations.js";

// 4 of 10 public drizzle-kit histories hold files like these: BEGIN ... COMMIT blocks written
// for drizzle's migrator, which runs them inside its own transaction and commits by accident.

let db: TestDatabase;
let folder: MigrationsFolder;
beforeEach(async () => {
  db = await createTestDatabase("own_tx");
  folder = new MigrationsFolder([
    { name: "accounts", statements: ["CREATE TABLE accounts (id serial PRIMARY KEY, email text NOT NULL);"] },
  ]);
});
afterEach(async () => {
  await db.drop();
  folder.remove();
});

const env = () => ({ DATABASE_URL: db.url, MIGRATIONS_DIR: folder.dir });
const up = (...args: string[]) => runCli(["up", ...args], env());
const recorded = async () => (await drizzleRows(db.url)).map((r) => Number(r.created_at));

const twoBlocks = (second: string) => [
  "BEGIN;\nCREATE TABLE IF NOT EXISTS first_block (id integer);\nINSERT INTO first_block VALUES (1);\nCOMMIT;",
  `START TRANSACTION;\n${second}\nEND;`,
];

describe("a file with BEGIN ... COMMIT blocks of its own", () => {
  it("runs alone between two transactions, with its blocks as written, and the log says so", async () => {
    const blocks = folder.add({ name: "blocks", statements: twoBlocks("CREATE TABLE second_block (id integer);") });
    folder.add({ name: "after", statements: ["ALTER TABLE second_block ADD COLUMN note text;"] });
    const [accounts, , after] = folder.tags;
    const run = await up();
    expect(run.code, run.stdout).toBe(0);
    expect(only(run, "migration.plan").batches).toEqual([
      { transactional: true, ownTransactions: false, tags: [accounts] },
      { transactional: false, ownTransactions: true, tags: [blocks.tag] },
      { transactional: true, ownTransactions: false, tags: [after] },
    ]);
    expect(only(run, "migration.transactions.own")).toMatchObject({
      severity: "NOTICE",
      tag: blocks.tag,
      line: positionOf(blocks.text, "BEGIN").line,
    });
    expect(only(run, "migration.transactions.own").message).toContain("not atomic as a whole");
    expect(only(run, "migration.run.finished")).toMatchObject({ status: "applied", applied: folder.tags });
    expect(await recorded()).toEqual(folder.migrations.map((m) => m.when));
    // No "there is no transaction in progress" from a COMMIT run outside any transaction.
    expect(run.stdout).not.toMatch(/no transaction in progress|already a transaction in progress/);
    expect(only(await up(), "migration.run.finished").status).toBe("noop");
  });

  it("keeps a COMMIT before any BEGIN and a block left open one transaction each, as drizzle's own transaction made them", async () => {
    folder.add({
      name: "loose",
      statements: [
        "CREATE TABLE loose_a (id integer);\nINSERT INTO loose_a VALUES (1);\nCOMMIT;",
        "CREATE TABLE loose_b (id integer);",
        "BEGIN;\nCREATE TABLE loose_c (id integer);",
      ],
    });
    const run = await up();
    expect(run.code, run.stdout).toBe(0);
    for (const table of ["loose_a", "loose_b", "loose_c"]) expect(await tableExists(db.url, table)).toBe(true);
    expect(await recorded()).toEqual(folder.migrations.map((m) => m.when));
  });

  it("builds the same schema and records the same rows as drizzle-orm's migrate()", async () => {
    folder.add({ name: "blocks", statements: twoBlocks("CREATE TABLE second_block (id integer);") });
    folder.add({ name: "after", statements: ["ALTER TABLE second_block ADD COLUMN note text;"] });
    const theirs = await createTestDatabase("own_tx_drizzle");
    try {
      const client = new pg.Client(theirs.url);
      await client.connect();
      await migrate(drizzle(client), { migrationsFolder: folder.dir }).finally(() => client.end());
      expect((await up()).code).toBe(0);
      expect(await drizzleRows(db.url)).toEqual(await drizzleRows(theirs.url));
      // The catalog, not pg_dump: the suite also runs on PostgreSQL 18, which pg_dump 15 refuses.
      expect(await readCatalog(db)).toEqual(await readCatalog(theirs));
    } finally {
      await theirs.drop();
    }
  });

  it("whose second block fails keeps the first block, rolls back the second, and says so", async () => {
    const blocks = folder.add({
      name: "blocks",
      statements: twoBlocks("CREATE TABLE second_block (id integer);\nINSERT INTO second_block VALUES ('not a number');"),
    });
    const run = await up();
    expect(run.code).toBe(1);
    const failed = only(run, "migration.failed");
    expect(failed).toMatchObject({ tag: blocks.tag, sqlstate: "22P02", ...positionOf(blocks.text, "'not a number'") });
    expect(failed.hint).toContain(`only its block from line ${positionOf(blocks.text, "START TRANSACTION").line} was rolled back`);
    expect(failed.hint).toContain(`its statements up to line ${positionOf(blocks.text, "COMMIT").line} stay in effect`);
    expect(failed.hint).toContain("runs it again from its first statement");
    expect(await tableExists(db.url, "first_block")).toBe(true);
    expect(await tableExists(db.url, "second_block")).toBe(false);
    expect(only(run, "migration.run.finished")).toMatchObject({ status: "failed", applied: [folder.tags[0]] });
    expect(await recorded()).toEqual([folder.migrations[0]?.when]);
  });

  it("killed between its two blocks keeps the first, is pending again, and the next run applies it from the top", async () => {
    await db.query(`ALTER DATABASE ${db.name} SET yomu_test.sleep = '60'`);
    folder.add({
      name: "blocks",
      statements: [
        "BEGIN;\nCREATE TABLE IF NOT EXISTS first_block (id integer PRIMARY KEY);\nINSERT INTO first_block VALUES (1) ON CONFLICT DO NOTHING;\nCOMMIT;",
        "SELECT pg_sleep(coalesce(nullif(current_setting('yomu_test.sleep', true), ''), '0')::float8);",
        "BEGIN;\nCREATE TABLE second_block (id integer);\nCOMMIT;",
      ],
    });
    const runner = startCli(["up"], env());
    await eventually("the runner to sleep between the blocks", () =>
      withClient(db.url, async (client) => {
        const { rows } = await client.query(
          "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND state = 'active' AND query LIKE 'SELECT pg_sleep(coalesce%' AND application_name LIKE 'yomu-migrate%'",
        );
        return rows.length > 0 ? true : undefined;
      }),
    );
    runner.child.kill("SIGKILL");
    expect((await runner.done).signal).toBe("SIGKILL");
    expect(await tableExists(db.url, "first_block")).toBe(true);
    expect(await tableExists(db.url, "second_block")).toBe(false);
    expect(await recorded()).toEqual([folder.migrations[0]?.when]);

    await db.query(`ALTER DATABASE ${db.name} SET yomu_test.sleep = '0'`);
    const next = await up("--lock-wait-timeout", "30s");
    expect(next.code, next.stdout).toBe(0);
    expect(only(next, "migration.run.finished").applied).toEqual([folder.tags[1]]);
    expect((await db.query("SELECT id FROM first_block")).rows).toEqual([{ id: 1 }]);
    expect(await tableExists(db.url, "second_block")).toBe(true);
  });

  it("retries a block that hits lock_timeout from its BEGIN", async () => {
    expect((await up()).code).toBe(0);
    folder.add({ name: "blocks", statements: twoBlocks("ALTER TABLE accounts ADD COLUMN note text;") });
    await withClient(db.url, async (blocker) => {
      await blocker.query("BEGIN");
      await blocker.query("SELECT * FROM accounts");
      const runner = startCli(["up", "--lock-timeout", "200ms", "--lock-retries", "10"], env());
      await runner.waitFor("migration.lock_timeout.retry");
      await blocker.query("COMMIT");
      const run = await runner.done;
      expect(run.code, run.stdout).toBe(0);
      expect(eventsNamed(run, "migration.lock_timeout.retry").length).toBeGreaterThanOrEqual(1);
    });
    const columns = await db.query("SELECT 1 FROM information_schema.columns WHERE table_name = 'accounts' AND column_name = 'note'");
    expect(columns.rowCount).toBe(1);
    expect((await db.query("SELECT id FROM first_block")).rows).toEqual([{ id: 1 }]);
  });
});

describe("what is not transaction control", () => {
  it("keeps CREATE FUNCTION ... BEGIN ATOMIC ... END in the run's transaction", async () => {
    folder.add({
      name: "atomic_function",
      statements: ["CREATE FUNCTION answer() RETURNS integer LANGUAGE sql\nBEGIN ATOMIC\n  SELECT 42;\nEND;"],
    });
    folder.add({ name: "broken", statements: ["SELECT answer();", "SELECT nope FROM accounts;"] });
    const run = await up();
    expect(run.code).toBe(1);
    expect(only(run, "migration.plan").batches).toEqual([{ transactional: true, ownTransactions: false, tags: folder.tags }]);
    expect(eventsNamed(run, "migration.transactions.own")).toEqual([]);
    // One transaction: the later failure took the function and every table with it.
    const fn = await db.query("SELECT 1 FROM pg_proc WHERE proname = 'answer'");
    expect(fn.rowCount).toBe(0);
    expect(await tableExists(db.url, "accounts")).toBe(false);

    folder.remove();
    folder = new MigrationsFolder([
      { name: "atomic_function", statements: ["CREATE FUNCTION answer() RETURNS integer LANGUAGE sql\nBEGIN ATOMIC\n  SELECT 42;\nEND;"] },
    ]);
    expect((await up()).code).toBe(0);
    expect((await db.query("SELECT answer() AS a")).rows).toEqual([{ a: 42 }]);
  });
});

describe("a breakpoint inside a string", () => {
  it("is refused before anything runs, naming the breakpoint as the cause", async () => {
    const cut = folder.add({
      name: "cut",
      statements: ["INSERT INTO accounts (email) VALUES ('a", "b');"],
    });
    const run = await up();
    expect(run.code).toBe(1);
    const failed = only(run, "migration.failed");
    expect(failed).toMatchObject({ tag: cut.tag, statement: 1, sqlstate: "42601", ...positionOf(cut.text, "'a") });
    expect(failed.message).toContain("unterminated quoted string");
    expect(failed.message).toContain("statement-breakpoint` at line 2 is inside a string");
    expect(await tableExists(db.url, "accounts")).toBe(false);
  });
});
