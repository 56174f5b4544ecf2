// A file that is not UTF-8, or starts with a byte-order mark, is read the same way by every
// command that reads migrations: up, lint and baseline, through migration-file.ts.
import { readFileSync, writeFileSync } from "node:fs";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../../test/support/database.js";
import { type CliRun, only, runCli, tableExists } from "./support/cli.js";
import { MigrationFolders, MigrationsFolder } from "./support/migrations.js";

let db: TestDatabase;
beforeEach(async () => {
  db = await createTestDatabase("encoding");
});
afterEach(async () => {
  await db.drop();
});

/** No Rust panic from squawk, no Node stack: one JSON error line naming the file. */
function expectCleanRefusal(run: CliRun, message: string): void {
  expect(run.code, run.stdout + run.stderr).toBe(2);
  // up reports through its run (migration.failed), the other commands through migration.error.
  const errors = run.events.filter((e) => e.event === "migration.failed" || e.event === "migration.error");
  expect(errors.map((e) => e.message)).toEqual([message]);
  expect(run.otherLines).toEqual([]);
  expect(run.stderr).not.toMatch(/panicked|RUST_BACKTRACE|\n\s+at /);
}

describe.each([
  ["0.x journal", () => new MigrationsFolder()],
  ["1.0 folders", () => new MigrationFolders()],
] as const)("in drizzle-kit's %s layout", (_layout, make) => {
  let folder: MigrationsFolder | MigrationFolders;
  beforeEach(() => {
    folder = make();
  });
  afterEach(() => folder.remove());

  it("a Latin-1 byte: up, lint and baseline all refuse with exit 2, naming the file and line", async () => {
    const m = folder.add({ name: "latin1", statements: ["CREATE TABLE notes (body text);", "INSERT INTO notes VALUES ('caf__');"] });
    const bytes = Buffer.from(m.text.replace("caf__", "caf\0"), "utf8");
    bytes[bytes.indexOf(0)] = 0xe9;
    writeFileSync(m.file, bytes);
    const expected = `${m.file}:3 is not valid UTF-8 (byte 0xe9)`;
    const env = { DATABASE_URL: db.url, MIGRATIONS_DIR: folder.dir };
    expectCleanRefusal(await runCli(["up"], env), expected);
    expect(await tableExists(db.url, "notes")).toBe(false);
    expectCleanRefusal(await runCli(["lint", m.file], env), expected);
    expectCleanRefusal(await runCli(["lint"], env), expected);
    expectCleanRefusal(await runCli(["baseline", m.file], env), expected);
    expect(readFileSync(m.file).equals(bytes)).toBe(true);
  });

  it("a byte-order mark: lint and baseline read past it as up does, and baseline keeps it", async () => {
    const m = folder.add({ name: "bom", statements: ["CREATE TABLE books (id int, title text);"] });
    writeFileSync(m.file, `\ufeff${m.text}`);
    const env = { DATABASE_URL: db.url, MIGRATIONS_DIR: folder.dir };
    const lint = await runCli(["lint", m.file], env);
    // Without the BOM handled, PostgreSQL's parser says: syntax error at or near "\ufeffCREATE".
    expect(lint.code, lint.stdout).toBe(0);
    expect(lint.events.filter((e) => e.event === "migration.lint.finding")).toEqual([]);

    // The database already has the table: baseline's rewrite must adopt it, BOM and all.
    await db.query("CREATE TABLE books (id int)");
    const baseline = await runCli(["baseline", m.file], env);
    expect(baseline.code, baseline.stdout).toBe(0);
    expect(only(baseline, "migration.baseline.finished")).toMatchObject({ written: true });
    const rewritten = readFileSync(m.file);
    expect([...rewritten.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
    expect(rewritten.toString("utf8")).toContain("CREATE TABLE IF NOT EXISTS");
    expect((await runCli(["baseline", m.file, "--check"], env)).code).toBe(0);

    const up = await runCli(["up"], env);
    expect(up.code, up.stdout).toBe(0);
    expect(up.events.filter((e) => e.event === "migration.journal.warning").map((e) => e.code)).toEqual(["byte-order-mark"]);
    const columns = await db.query(
      "SELECT column_name FROM information_schema.columns WHERE table_name = 'books' ORDER BY ordinal_position",
    );
    expect(columns.rows.map((r) => r.column_name)).toEqual(["id", "title"]);
  });
});
