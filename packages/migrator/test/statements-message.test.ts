// A transactional batch travels to the server several statements to a message (apply-batch.ts):
// one round trip for many, yet every failure still names the file, statement, line and column it
// would name with each statement sent alone, and nothing of the batch stays applied.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../../test/support/database.js";
import { type MigratorEvent, runMigrations } from "../src/index.js";
import { drizzleRows, tableExists } from "./support/cli.js";
import { MigrationsFolder, positionOf } from "./support/migrations.js";

let db: TestDatabase;
let folder: MigrationsFolder;
beforeEach(async () => {
  db = await createTestDatabase("message");
  folder = new MigrationsFolder([{ name: "seen", statements: ["CREATE TABLE seen (query text);"] }]);
});
afterEach(async () => {
  await db.drop();
  folder.remove();
});

async function up(events: MigratorEvent[] = []) {
  return runMigrations({ databaseUrl: db.url, dir: folder.dir, onEvent: (e) => events.push(e) });
}

/** The message each `seen` row was written from: `current_query()` is the whole message's text. */
async function messages(): Promise<string[]> {
  return (await db.query<{ query: string }>("SELECT query FROM seen")).rows.map((r) => r.query);
}

describe("a batch sent several statements to a message", () => {
  it("applies every migration and its drizzle row from one message, each migration timed", async () => {
    folder.add({ name: "users", statements: ["CREATE TABLE users (id integer);", "INSERT INTO seen SELECT current_query();"] });
    folder.add({ name: "posts", statements: ["CREATE TABLE posts (id integer);", "INSERT INTO users VALUES (1);"] });
    const events: MigratorEvent[] = [];
    const run = await up(events);
    expect(run.error, run.error?.message).toBeUndefined();
    expect(run.applied).toEqual(folder.tags);
    const [message] = await messages();
    // The first two migrations and the third's statements came in the same message as the capture.
    expect(message).toContain("CREATE TABLE seen");
    expect(message).toContain("CREATE TABLE posts");
    expect(message).toContain("INSERT INTO users VALUES (1)");
    expect((await drizzleRows(db.url)).length).toBe(3);
    const applied = events.filter((e) => e.event === "migration.applied");
    expect(applied.map((e) => e.tag)).toEqual(folder.tags);
    for (const e of applied) expect(typeof e.durationMs).toBe("number");
  });

  it("names line and column of a failure the server places, after multibyte text earlier in the message", async () => {
    // Characters outside the BMP count once for the server and twice in a JavaScript string.
    folder.add({ name: "notes", statements: ["CREATE TABLE notes (body text);", "INSERT INTO notes VALUES ('😀 naïve 😀');"] });
    const bad = folder.add({
      name: "broken",
      statements: [
        "INSERT INTO notes VALUES ('🚀');",
        "ALTER TABLE notes\n  ADD COLUMN mood no_such_type;",
        "CREATE TABLE after (id int);",
      ],
    });
    folder.add({ name: "later", statements: ["CREATE TABLE later (id integer);"] });
    const run = await up();
    const where = positionOf(bad.text, "no_such_type");
    expect(run.error?.code).toBe("MIGRATION_FAILED");
    expect(run.error?.details).toMatchObject({ tag: bad.tag, statement: 2, sqlstate: "42704", ...where });
    expect(run.error?.message).toContain(`${bad.tag}.sql:${where.line}:${where.column}:`);
    expect(run.applied).toEqual([]);
    for (const table of ["seen", "notes", "after", "later"]) expect(await tableExists(db.url, table)).toBe(false);
    expect(await drizzleRows(db.url)).toEqual([]);
  });

  it("traces a failure the server does not place to its piece, counting statements of pieces that hold several or none", async () => {
    folder.add({
      name: "codes",
      statements: ["CREATE TABLE codes (code int PRIMARY KEY);", "-- only a comment", "INSERT INTO codes VALUES (1), (2);"],
    });
    const bad = folder.add({
      name: "duplicate",
      statements: [
        "INSERT INTO codes VALUES (3);\nINSERT INTO codes VALUES (4);\nINSERT INTO codes VALUES (6);",
        "INSERT INTO codes VALUES (5);",
        "INSERT INTO codes VALUES (2);",
        "INSERT INTO codes VALUES (7);",
      ],
    });
    const run = await up();
    const where = positionOf(bad.text, "INSERT INTO codes VALUES (2)");
    // 23505 comes without a position: the piece is found by counting the server's completions.
    expect(run.error?.details).toMatchObject({ tag: bad.tag, statement: 3, sqlstate: "23505", ...where });
    expect(await tableExists(db.url, "codes")).toBe(false);
  });

  it("skips blank pieces, which the server answers with nothing", async () => {
    const bad = folder.add({
      name: "blanks",
      statements: ["CREATE TABLE blank (id int PRIMARY KEY);", "   ", "INSERT INTO blank VALUES (1), (1);"],
    });
    const run = await up();
    expect(run.error?.details).toMatchObject({ tag: bad.tag, statement: 3, sqlstate: "23505" });
  });

  it("splits a batch larger than one message between messages, a migration's pieces too, and applies it whole", async () => {
    // Past 256 Ki characters, so the message ends inside the migration.
    const rows = Array.from({ length: 9_000 }, (_, i) => `(${i}, '${"x".repeat(20)}')`).join(", ");
    folder.add({
      name: "big",
      statements: ["CREATE TABLE big (id int, pad text);", `INSERT INTO big VALUES ${rows};`, "INSERT INTO seen SELECT current_query();"],
    });
    folder.add({ name: "small", statements: ["INSERT INTO seen SELECT current_query();"] });
    const run = await up();
    expect(run.error, run.error?.message).toBeUndefined();
    expect((await db.query("SELECT count(*)::int AS n FROM big")).rows[0]).toEqual({ n: 9_000 });
    const [bigQuery, smallQuery] = await messages();
    expect(bigQuery).not.toContain("CREATE TABLE big");
    expect(smallQuery).toBe(bigQuery);
    expect((await drizzleRows(db.url)).length).toBe(3);
  });

  it("bounds each statement of a message by statement_timeout, not the message as a whole", async () => {
    // Five statements of 0.3 s under a 1 s timeout: 1.5 s in all, in one message (PostgreSQL 13+).
    folder.add({ name: "naps", statements: Array.from({ length: 5 }, () => "SELECT pg_sleep(0.3);") });
    const run = await runMigrations({ databaseUrl: db.url, dir: folder.dir, statementTimeoutMs: 1_000 });
    expect(run.error, run.error?.message).toBeUndefined();
    expect(run.applied).toEqual(folder.tags);
  });

  it("says so when a migration breaks drizzle's table, so that its row cannot be written, and rolls it all back", async () => {
    const bad = folder.add({ name: "drop_drizzle", statements: ["DROP SCHEMA drizzle CASCADE;"] });
    const run = await up();
    expect(run.error?.code).toBe("MIGRATION_FAILED");
    expect(run.error?.message).toContain(`${bad.tag} ran, but recording it in drizzle.__drizzle_migrations failed`);
    expect(run.error?.details).toMatchObject({ tag: bad.tag, sqlstate: "42P01" });
    expect(await drizzleRows(db.url)).toEqual([]);
    expect(await tableExists(db.url, "seen")).toBe(false);
  });

  it("fails a COPY FROM STDIN, which has no data to read, naming the statement", async () => {
    const bad = folder.add({ name: "copy", statements: ["CREATE TABLE imported (id int);", "COPY imported FROM STDIN;"] });
    const run = await up();
    expect(run.error?.details).toMatchObject({ tag: bad.tag, statement: 2, sqlstate: "57014" });
    expect(run.error?.message).toContain("yomu-migrate sends no COPY data");
    expect(run.error?.hint).toContain("put the rows in the migration as INSERTs");
  });
});

describe("a session whose notices are hidden", () => {
  it("sends each statement alone: without notices nothing tells the client that a statement finished", async () => {
    await db.query(`ALTER DATABASE ${db.name} SET client_min_messages = warning`);
    folder.add({ name: "capture", statements: ["CREATE TABLE other (id int);", "INSERT INTO seen SELECT current_query();"] });
    const run = await up();
    expect(run.error, run.error?.message).toBeUndefined();
    // The piece exactly as drizzle-orm sends it, breakpoint's newlines and all.
    expect(await messages()).toEqual(["\nINSERT INTO seen SELECT current_query();\n"]);
  });
});
