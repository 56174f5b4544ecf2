import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../../test/support/database.js";
import { runMigrations } from "../src/index.js";
import { drizzleRows, eventsNamed, only, runCli, startCli, tableExists, withClient } from "./support/cli.js";
import { MigrationsFolder, positionOf } from "./support/migrations.js";

let db: TestDatabase;
let folder: MigrationsFolder;
beforeEach(async () => {
  db = await createTestDatabase("apply");
  folder = new MigrationsFolder([
    { name: "accounts", statements: ["CREATE TABLE accounts (id serial PRIMARY KEY, email text NOT NULL);"] },
  ]);
});
afterEach(async () => {
  await db.drop();
  folder.remove();
});

const env = () => ({ DATABASE_URL: db.url, MIGRATIONS_DIR: folder.dir });

async function up(...args: string[]) {
  return runCli(["up", ...args], env());
}

async function recorded(): Promise<number[]> {
  return (await drizzleRows(db.url)).map((r) => Number(r.created_at));
}

describe("a failing migration", () => {
  it("in the last of several pending migrations leaves the database exactly as it was, naming file, statement, line and column", async () => {
    expect((await up()).code).toBe(0);
    folder.add({ name: "profiles", statements: ["CREATE TABLE profiles (id integer);", "INSERT INTO profiles VALUES (1);"] });
    folder.add({ name: "accounts_email_index", statements: ["CREATE UNIQUE INDEX accounts_email_idx ON accounts (email);"] });
    const bad = folder.add({
      name: "broken",
      statements: ["CREATE TABLE settings (id integer);", "ALTER TABLE settings\n  ADD COLUMN theme no_such_type;"],
    });

    const run = await up();
    expect(run.code).toBe(1);
    expect(run.stderr).toBe("");
    const failed = only(run, "migration.failed");
    const where = positionOf(bad.text, "no_such_type");
    expect(failed).toMatchObject({
      severity: "ERROR",
      code: "MIGRATION_FAILED",
      tag: bad.tag,
      statement: 2,
      sqlstate: "42704",
      line: where.line,
      column: where.column,
    });
    expect(String(failed.file).endsWith(`${bad.tag}.sql`)).toBe(true);
    expect(failed.message).toContain(`${bad.tag}.sql:${where.line}:${where.column}`);
    expect(failed.error).toContain("no_such_type");
    expect(only(run, "migration.run.finished")).toMatchObject({ status: "failed", applied: [], schemaVersion: folder.tags[0] });
    expect(eventsNamed(run, "migration.applied")).toEqual([]);

    for (const table of ["profiles", "settings"]) expect(await tableExists(db.url, table)).toBe(false);
    expect(await tableExists(db.url, "accounts_email_idx")).toBe(false);
    expect(await recorded()).toEqual([folder.migrations[0]?.when]);
  });

  it("reports the line and column of a syntax error in a statement that starts lines into the file", async () => {
    const bad = folder.add({
      name: "typo",
      statements: [
        "CREATE TABLE tags (id integer);",
        "-- a comment line\nCREATE TABLE labels (id integer);",
        "ALTER TABLE tags ADD COLUMN name text;\nSELEC 1;",
      ],
    });
    // In process: the library's result carries what the CLI's event prints.
    const result = await runMigrations({ databaseUrl: db.url, dir: folder.dir });
    expect(result.error?.exitCode).toBe(1);
    const where = positionOf(bad.text, "SELEC 1");
    expect(result.error?.details).toMatchObject({
      tag: bad.tag,
      statement: 3,
      sqlstate: "42601",
      line: where.line,
      column: where.column,
    });
    expect(await tableExists(db.url, "accounts")).toBe(false);
    expect(await recorded()).toEqual([]);
  });

  // The applier keeps no offsets per piece: both places are counted from the file only once a
  // statement fails, past pieces with multi-byte characters in them.
  it("places an error the server gives no position for at its statement's first token, many pieces into the file", async () => {
    const filler = Array.from({ length: 200 }, (_, i) => `-- ligne ${i} 🎉\nINSERT INTO tags VALUES (${i}, 'étiquette ${i}');`);
    const bad = folder.add({
      name: "duplicate",
      statements: [
        "CREATE TABLE tags (id integer PRIMARY KEY, name text);",
        ...filler,
        "\n-- déjà vu 🎉\n  INSERT INTO tags VALUES (7, 'again');",
      ],
    });
    const run = await up();
    expect(run.code).toBe(1);
    const where = positionOf(bad.text, "INSERT INTO tags VALUES (7, 'again')");
    expect(only(run, "migration.failed")).toMatchObject({ tag: bad.tag, statement: 202, sqlstate: "23505", ...where });
    expect(only(run, "migration.failed").message).toContain(`${bad.tag}.sql:${where.line}:${where.column}:`);
    expect(await tableExists(db.url, "tags")).toBe(false);
  });
});

describe("the migration session", () => {
  it("runs under the configured application_name, lock_timeout and statement_timeout", async () => {
    folder.add({
      name: "capture_settings",
      statements: [
        "CREATE TABLE seen AS SELECT current_setting('application_name') AS app, current_setting('lock_timeout') AS lock_timeout, current_setting('statement_timeout') AS statement_timeout;",
      ],
    });
    const run = await runMigrations({
      databaseUrl: db.url,
      dir: folder.dir,
      lockTimeoutMs: 750,
      statementTimeoutMs: 90_000,
      host: "migrate-job-7f9c",
    });
    expect(run.error, run.error?.message).toBeUndefined();
    expect((await db.query("SELECT * FROM seen")).rows).toEqual([
      { app: "yomu-migrate migrate-job-7f9c", lock_timeout: "750ms", statement_timeout: "90s" },
    ]);
  });

  it("cancels a statement that runs past --statement-timeout, with SQLSTATE 57014 and a hint naming the setting", async () => {
    folder.add({ name: "slow", statements: ["CREATE TABLE slow (id integer);", "SELECT pg_sleep(30);"] });
    const run = await runMigrations({ databaseUrl: db.url, dir: folder.dir, statementTimeoutMs: 300 });
    expect(run.error?.code).toBe("MIGRATION_FAILED");
    expect(run.error?.details).toMatchObject({ tag: folder.tags[1], statement: 2, sqlstate: "57014" });
    expect(run.error?.hint).toContain("--statement-timeout");
    expect(await tableExists(db.url, "slow")).toBe(false);
    expect(await recorded()).toEqual([]);
  });
});

describe("a slow run", () => {
  it("logs migration.slow as a WARNING with the duration and the threshold, and a quick one does not", async () => {
    folder.add({ name: "nap", statements: ["SELECT pg_sleep(0.2);"] });
    const slow = await up("--slow-threshold", "50ms");
    expect(slow.code).toBe(0);
    const event = only(slow, "migration.slow");
    expect(event).toMatchObject({ severity: "WARNING", thresholdMs: 50 });
    // Slow means slow applying: the time after the lock was granted, not the whole run.
    expect(event.durationMs).toBe(only(slow, "migration.run.finished").applyMs);
    expect(event.durationMs as number).toBeGreaterThan(event.thresholdMs as number);

    const quick = await up("--slow-threshold", "5m");
    expect(only(quick, "migration.run.finished").status).toBe("noop");
    expect(eventsNamed(quick, "migration.slow")).toEqual([]);
  });
});

describe("two migrations with identical files", () => {
  // Regression: matching rows by hash alone took the second for applied once the first was.
  it("are both applied, in two runs as in one", async () => {
    const bump = ["UPDATE counters SET n = n + 1;"];
    folder.add({ name: "counters", statements: ["CREATE TABLE counters (n integer NOT NULL);", "INSERT INTO counters VALUES (0);"] });
    folder.add({ name: "bump_once", statements: bump });
    expect((await up()).code).toBe(0);
    folder.add({ name: "bump_again", statements: bump });
    const run = await up();
    expect(run.code, run.stdout).toBe(0);
    expect(only(run, "migration.run.finished")).toMatchObject({ status: "applied", applied: [folder.tags[3]] });
    expect((await db.query("SELECT n FROM counters")).rows).toEqual([{ n: 2 }]);
    expect(await recorded()).toEqual(folder.migrations.map((m) => m.when));
    const again = await up();
    expect(only(again, "migration.run.finished").status).toBe("noop");
  });
});

describe("lock_timeout", () => {
  async function withBlocker<T>(fn: (release: () => Promise<void>) => Promise<T>): Promise<T> {
    // An open transaction that has read the table holds ACCESS SHARE, which ALTER TABLE's
    // ACCESS EXCLUSIVE has to wait for: a long-running request during a deploy.
    return withClient(db.url, async (blocker) => {
      await blocker.query("BEGIN");
      await blocker.query("SELECT count(*) FROM accounts");
      let open = true;
      const release = async () => {
        if (open) await blocker.query("COMMIT");
        open = false;
      };
      try {
        return await fn(release);
      } finally {
        await release();
      }
    });
  }

  it("rolls back and retries a statement that waits too long for its table, and succeeds once the blocker is gone", async () => {
    expect((await up()).code).toBe(0);
    folder.add({ name: "add_note", statements: ["CREATE TABLE notes (id integer);", "ALTER TABLE accounts ADD COLUMN note text;"] });
    const run = await withBlocker(async (release) => {
      const runner = startCli(["up", "--lock-timeout", "200ms", "--lock-retries", "5"], env());
      const retry = await runner.waitFor("migration.lock_timeout.retry");
      expect(retry).toMatchObject({ severity: "WARNING", tag: folder.tags[1], statement: 2, attempt: 1, retries: 5 });
      // While the runner backs off, it holds no table lock and no open transaction.
      expect(await tableExists(db.url, "notes")).toBe(false);
      await release();
      return runner.done;
    });
    expect(run.code, run.stdout).toBe(0);
    expect(eventsNamed(run, "migration.lock_timeout.retry").length).toBeGreaterThanOrEqual(1);
    expect(only(run, "migration.run.finished")).toMatchObject({ status: "applied", applied: [folder.tags[1]] });
    const columns = await db.query(
      "SELECT column_name FROM information_schema.columns WHERE table_name = 'accounts' AND column_name = 'note'",
    );
    expect(columns.rowCount).toBe(1);
  });

  it("gives up after the retries with exit 1 and SQLSTATE 55P03, leaving nothing applied", async () => {
    expect((await up()).code).toBe(0);
    folder.add({ name: "add_note", statements: ["CREATE TABLE notes (id integer);", "ALTER TABLE accounts ADD COLUMN note text;"] });
    const run = await withBlocker(() => up("--lock-timeout", "200ms", "--lock-retries", "2"));
    expect(run.code).toBe(1);
    expect(eventsNamed(run, "migration.lock_timeout.retry").map((e) => e.attempt)).toEqual([1, 2]);
    expect(only(run, "migration.failed")).toMatchObject({ tag: folder.tags[1], statement: 2, sqlstate: "55P03" });
    expect(await tableExists(db.url, "notes")).toBe(false);
    expect(await recorded()).toEqual([folder.migrations[0]?.when]);
  });
});

describe("a -- yomu:no-transaction migration", () => {
  it("runs CREATE INDEX CONCURRENTLY alone, with the plan split around it", async () => {
    folder.add({ name: "seed", statements: ["INSERT INTO accounts (email) VALUES ('a@example.com'), ('b@example.com');"] });
    folder.add({
      name: "email_index",
      header: "-- yomu:no-transaction",
      statements: ["CREATE INDEX CONCURRENTLY accounts_email_idx ON accounts (email);"],
    });
    folder.add({ name: "add_name", statements: ["ALTER TABLE accounts ADD COLUMN name text;"] });
    const [accounts, seed, index, addName] = folder.tags;

    const run = await up();
    expect(run.code, run.stdout).toBe(0);
    expect(only(run, "migration.plan").batches).toEqual([
      { transactional: true, ownTransactions: false, tags: [accounts, seed] },
      { transactional: false, ownTransactions: false, tags: [index] },
      { transactional: true, ownTransactions: false, tags: [addName] },
    ]);
    expect(only(run, "migration.run.finished").applied).toEqual(folder.tags);
    const valid = await db.query<{ indisvalid: boolean }>(
      "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass('accounts_email_idx')",
    );
    expect(valid.rows).toEqual([{ indisvalid: true }]);
    expect(await recorded()).toEqual(folder.migrations.map((m) => m.when));
  });

  it("that fails leaves the batches before it applied and says nothing was rolled back", async () => {
    folder.add({ name: "duplicates", statements: ["INSERT INTO accounts (email) VALUES ('a@example.com'), ('a@example.com');"] });
    const index = folder.add({
      name: "email_unique",
      header: "-- yomu:no-transaction",
      statements: ["CREATE UNIQUE INDEX CONCURRENTLY accounts_email_key ON accounts (email);"],
    });
    const run = await up();
    expect(run.code).toBe(1);
    const failed = only(run, "migration.failed");
    expect(failed).toMatchObject({ tag: index.tag, sqlstate: "23505" });
    expect(failed.hint).toContain("nothing was rolled back");
    expect(failed.hint).toContain("INVALID");
    expect(only(run, "migration.run.finished")).toMatchObject({ status: "failed", applied: folder.tags.slice(0, 2) });
    expect(await recorded()).toEqual(folder.migrations.slice(0, 2).map((m) => m.when));
    // PostgreSQL leaves an INVALID index behind; the runner drops it so a rerun can build it.
    expect(only(run, "migration.index.invalid_dropped")).toMatchObject({ index: "accounts_email_key" });
    const leftover = await db.query("SELECT 1 FROM pg_index WHERE indexrelid = to_regclass('accounts_email_key')");
    expect(leftover.rowCount).toBe(0);
  });

  it("is needed: without the marker CREATE INDEX CONCURRENTLY fails with 25001 and a hint naming it", async () => {
    folder.add({ name: "email_index", statements: ["CREATE INDEX CONCURRENTLY accounts_email_idx ON accounts (email);"] });
    const run = await up();
    expect(run.code).toBe(1);
    const failed = only(run, "migration.failed");
    expect(failed).toMatchObject({ tag: folder.tags[1], sqlstate: "25001" });
    expect(failed.hint).toContain("-- yomu:no-transaction");
    expect(await recorded()).toEqual([]);
  });
});
