import { closeSync, openSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { readMigrationFiles } from "drizzle-orm/migrator";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../../test/support/database.js";
import { drizzleRows, only, runCli, tableExists } from "./support/cli.js";
import { MigrationFolders, MigrationsFolder } from "./support/migrations.js";

// Journal and file checks through the CLI: what drizzle would misapply is refused with exit 2 and
// nothing applied; what drizzle applies silently is applied the same way, with a warning.

let db: TestDatabase;
let folder: MigrationsFolder;
beforeEach(async () => {
  db = await createTestDatabase("checks");
  folder = new MigrationsFolder([{ name: "authors", statements: ["CREATE TABLE authors (id serial PRIMARY KEY);"] }]);
});
afterEach(async () => {
  await db.drop();
  folder.remove();
});

const up = () => runCli(["up"], { DATABASE_URL: db.url, MIGRATIONS_DIR: folder.dir });

async function expectNothingApplied(): Promise<void> {
  expect(await tableExists(db.url, "authors")).toBe(false);
  expect(await drizzleRows(db.url)).toEqual([]);
}

/** Rewrites the journal so the last entry has these fields. */
function editLastEntry(fields: Record<string, unknown>): void {
  const path = join(folder.dir, "meta", "_journal.json");
  const journal = {
    version: "7",
    dialect: "postgresql",
    entries: folder.migrations.map((m, idx) => ({ idx, version: "7", when: m.when, tag: m.tag, breakpoints: true })),
  };
  Object.assign(journal.entries[journal.entries.length - 1] as object, fields);
  writeFileSync(path, JSON.stringify(journal));
}

const warnings = (run: Awaited<ReturnType<typeof up>>) => run.events.filter((e) => e.event === "migration.journal.warning");

describe("refused with exit 2, nothing applied", () => {
  it("a journal tag that leaves the migrations folder", async () => {
    writeFileSync(join(folder.dir, "..", "escape.sql"), "CREATE TABLE escaped (id int);");
    folder.add({ name: "placeholder", statements: ["SELECT 1;"] });
    editLastEntry({ tag: "../escape" });
    const run = await up();
    expect(run.code).toBe(2);
    expect(run.stdout).toContain('tag \\"../escape\\" points outside');
    expect(await tableExists(db.url, "escaped")).toBe(false);
    await expectNothingApplied();
  });

  it("a file that is not UTF-8, named with its line", async () => {
    const bad = folder.add({ name: "latin1", statements: ["CREATE TABLE notes (body text);", "INSERT INTO notes VALUES ('caf__');"] });
    // A Latin-1 é, as an editor set to Latin-1 saves it: drizzle would store U+FFFD in its place.
    const bytes = Buffer.from(bad.text.replace("caf__", "caf\0"), "utf8");
    bytes[bytes.indexOf(0)] = 0xe9;
    writeFileSync(bad.file, bytes);
    const run = await up();
    expect(run.code).toBe(2);
    expect(run.stdout).toMatch(new RegExp(`${bad.tag}\\.sql:3 is not valid UTF-8 \\(byte 0xe9\\)`));
    await expectNothingApplied();
  });

  it("a fractional `when`, which drizzle cannot record (created_at is a bigint)", async () => {
    folder.add({ name: "fraction", statements: ["SELECT 1;"] });
    editLastEntry({ when: 1_767_605_460_000.5 });
    const run = await up();
    expect(run.code).toBe(2);
    expect(run.stdout).toContain("not a whole number of milliseconds");
    await expectNothingApplied();
  });

  it("a file larger than up applies, with its size and the limit named", async () => {
    const big = folder.add({ name: "bulk", statements: ["SELECT 1;"] });
    const fd = openSync(big.file, "w");
    const line = `${"-- padding ".repeat(100)}\n`;
    for (let written = 0; written <= 65 * 1024 * 1024; written += line.length * 1000) writeSync(fd, line.repeat(1000));
    closeSync(fd);
    const run = await up();
    expect(run.code).toBe(2);
    expect(run.stdout).toMatch(/is 65\.\d MiB; yomu-migrate applies files up to 64\.0 MiB, so nothing was applied/);
    await expectNothingApplied();
    // status still reads it: only applying is bounded.
    const status = await runCli(["status"], { DATABASE_URL: db.url, MIGRATIONS_DIR: folder.dir });
    expect(status.code).toBe(0);
  });

  it("a file whose one piece, sent as one query, is larger than up sends, with the statement and the limit named", async () => {
    // Many pieces of any total size are fine; 8.9 MiB with no breakpoint is one 8.9 MiB query.
    const rows = (n: number, width: number) => Array.from({ length: n }, (_, i) => `INSERT INTO t VALUES (${i}, '${"x".repeat(width)}');`);
    const pieces = Array.from({ length: 10 }, () => rows(10_000, 80).join("\n"));
    folder.add({ name: "split", statements: ["CREATE TABLE t (id int, v text);", ...pieces] });
    const whole = folder.add({ name: "whole", statements: ["SELECT 1;", rows(10_000, 900).join("\n")] });
    const run = await up();
    expect(run.code, run.stdout).toBe(2);
    expect(run.stdout).toMatch(
      new RegExp(
        `${whole.tag}\\.sql: statement 2 of ${whole.tag} is 8\\.\\d MiB sent as one query, .*; yomu-migrate sends queries up to 8\\.0 MiB, so nothing was applied`,
      ),
    );
    await expectNothingApplied();
    writeFileSync(whole.file, ["SELECT 1;", ...rows(10_000, 900)].join("\n--> statement-breakpoint\n"));
    const applied = await up();
    expect(applied.code, applied.stdout).toBe(0);
  });
});

describe("applied as drizzle applies them, with a warning", () => {
  it("a file with a byte-order mark: applied without it, recorded with drizzle's hash", async () => {
    const bom = folder.add({ name: "bom", statements: ["CREATE TABLE books (id int);"] });
    writeFileSync(bom.file, `\ufeff${bom.text}`);
    const run = await up();
    expect(run.code, run.stdout).toBe(0);
    expect(await tableExists(db.url, "books")).toBe(true);
    const drizzleHash = readMigrationFiles({ migrationsFolder: folder.dir })[1]?.hash;
    expect((await drizzleRows(db.url))[1]?.hash).toBe(drizzleHash);
    expect(warnings(run).map((w) => w.code)).toEqual(["byte-order-mark"]);
  });

  it("`when` going backwards: applied in journal order, the pair named", async () => {
    const first = folder.migrations[0] as { tag: string; when: number };
    const back = folder.add({
      name: "back",
      statements: ["CREATE TABLE back (id int REFERENCES authors (id));"],
      when: first.when - 86_400_000,
    });
    const run = await up();
    expect(run.code, run.stdout).toBe(0);
    expect(only(run, "migration.run.finished")).toMatchObject({ status: "applied", applied: [first.tag, back.tag] });
    expect(warnings(run)).toEqual([expect.objectContaining({ code: "when-backwards", tags: [first.tag, back.tag] })]);
    expect((await drizzleRows(db.url)).map((r) => Number(r.created_at))).toEqual([first.when, back.when]);
  });

  it("an empty file: recorded as applied, as drizzle does, and named", async () => {
    const empty = folder.add({ name: "empty", statements: [] });
    writeFileSync(empty.file, "\n\n");
    const run = await up();
    expect(run.code, run.stdout).toBe(0);
    expect(await drizzleRows(db.url)).toHaveLength(2);
    expect(warnings(run)).toEqual([expect.objectContaining({ code: "empty-file", tags: [empty.tag] })]);
  });
});

describe("status and verify warn as up does, from the same reader", () => {
  const codes = (run: Awaited<ReturnType<typeof up>>) => warnings(run).map((w) => [w.code, w.tags, w.message]);

  async function expectSameWarnings(dir: string, expected: string[]): Promise<void> {
    const env = { DATABASE_URL: db.url, MIGRATIONS_DIR: dir };
    const applied = await runCli(["up"], env);
    expect(applied.code, applied.stdout).toBe(0);
    expect(warnings(applied).map((w) => w.code)).toEqual(expected);
    for (const command of [["status"], ["verify"], ["status", "--log-format", "pretty"]]) {
      const run = await runCli(command, env);
      expect(run.code, `${command.join(" ")}: ${run.stdout}`).toBe(0);
      if (command.length === 1) expect(codes(run), command.join(" ")).toEqual(codes(applied));
      else for (const w of warnings(applied)) expect(run.stdout).toContain(w.message as string);
    }
    // --json prints the result object with the warnings inside it, not as event lines beside it.
    for (const command of ["status", "verify"]) {
      const run = await runCli([command, "--json"], env);
      expect(run.otherLines, command).toHaveLength(1);
      expect(warnings(run), command).toEqual([]);
      const result = JSON.parse(run.otherLines[0] as string) as { warnings: Array<{ code: string }> };
      expect(
        result.warnings.map((w) => w.code),
        command,
      ).toEqual(expected);
    }
  }

  it("in drizzle-kit 0.x's journal layout: `when` going backwards, a BOM, a file not in the journal", async () => {
    const first = folder.migrations[0] as { when: number };
    const bom = folder.add({ name: "back", statements: ["CREATE TABLE back (id int);"], when: first.when - 60_000 });
    writeFileSync(bom.file, `\ufeff${bom.text}`);
    writeFileSync(join(folder.dir, "0099_orphan.sql"), "SELECT 1;\n");
    await expectSameWarnings(folder.dir, ["when-backwards", "not-in-journal", "byte-order-mark"]);
  });

  it("in drizzle-kit 1.0's layout: a BOM, an empty file, .sql files outside the folders", async () => {
    const folders = new MigrationFolders([
      { name: "authors", statements: ["CREATE TABLE authors (id serial PRIMARY KEY);"] },
      { name: "empty", statements: [] },
    ]);
    try {
      const [authors, empty] = folders.migrations;
      if (!authors || !empty) throw new Error("two migrations generated");
      writeFileSync(authors.file, `\ufeff${authors.text}`);
      writeFileSync(empty.file, "\n");
      // Left loose beside the folders: a file `drizzle-kit up` did not move, a down file in 0.x's place.
      writeFileSync(join(folders.dir, "0130_abandoned.sql"), "CREATE TABLE abandoned (id int);\n");
      writeFileSync(join(folders.dir, `${folders.tags[1]}.down.sql`), "SELECT 1;\n");
      await expectSameWarnings(folders.dir, ["not-in-a-folder", "not-in-a-folder", "byte-order-mark", "empty-file"]);
      expect(await tableExists(db.url, "abandoned")).toBe(false);
      const status = await runCli(["status"], { DATABASE_URL: db.url, MIGRATIONS_DIR: folders.dir });
      expect(warnings(status).map((w) => w.message)).toContain(
        `${join(folders.dir, `${folders.tags[1]}.down.sql`)} is not read: down takes a drizzle-kit 1.0 migration's reverse from ${join(folders.dir, folders.tags[1] as string, "down.sql")}`,
      );
    } finally {
      folders.remove();
    }
  });

  it("lint of the pending files says them on stderr when its output is JSON or Markdown, read whole", async () => {
    writeFileSync(join(folder.dir, "0099_orphan.sql"), "SELECT 1;\n");
    const env = { DATABASE_URL: db.url, MIGRATIONS_DIR: folder.dir };
    const markdown = await runCli(["lint", "--format", "markdown"], env);
    expect(markdown.code, markdown.stdout + markdown.stderr).toBe(0);
    expect(markdown.stdout.startsWith("### Lint\n")).toBe(true);
    expect(markdown.stderr).toContain("yomu-migrate: warning: ");
    expect(markdown.stderr).toContain("0099_orphan.sql is not in meta/_journal.json");
    const json = await runCli(["lint", "--json"], env);
    expect(JSON.parse(json.stdout)).toMatchObject({ files: [folder.migrations[0]?.file] });
    const events = await runCli(["lint"], env);
    expect(warnings(events).map((w) => w.code)).toEqual(["not-in-journal"]);
  });
});
