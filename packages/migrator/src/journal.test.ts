import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { findTransactionControl, locate, type Migration, NO_TRANSACTION_MARKER, readMigrations, STATEMENT_BREAKPOINT } from "./journal.js";

const dir = mkdtempSync(join(tmpdir(), "yomu-journal-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function write(files: Record<string, string>): string {
  const folder = mkdtempSync(join(dir, "m-"));
  mkdirSync(join(folder, "meta"));
  const entries = Object.keys(files).map((tag, idx) => ({ idx, version: "7", when: 1_000 + idx, tag, breakpoints: true }));
  writeFileSync(join(folder, "meta", "_journal.json"), JSON.stringify({ version: "7", dialect: "postgresql", entries }));
  for (const [tag, text] of Object.entries(files)) writeFileSync(join(folder, `${tag}.sql`), text);
  return folder;
}

const sep = `\n${STATEMENT_BREAKPOINT}\n`;

function fromText(text: string): Migration {
  const statements = text.split(STATEMENT_BREAKPOINT);
  const offsets: number[] = [];
  let offset = 0;
  for (const s of statements) {
    offsets.push(offset);
    offset += s.length + STATEMENT_BREAKPOINT.length;
  }
  return { tag: "t", when: 1, hash: "h", file: "t.sql", statements, offsets, noTransaction: false };
}

/** What an editor shows for the first occurrence of `needle`. */
function editorPosition(text: string, needle: string) {
  const lines = text.slice(0, text.indexOf(needle)).split("\n");
  return { line: lines.length, column: [...(lines.at(-1) ?? "")].length + 1 };
}

describe("locate", () => {
  it("turns a position in the first statement into the file's line and column", () => {
    const text = "CREATE TABLE a (\n  id integer,\n  bad nope\n);";
    const m = fromText(text);
    expect(locate(m, 0, text.indexOf("nope") + 1)).toEqual(editorPosition(text, "nope"));
  });

  it("counts the statements and breakpoints before a later statement", () => {
    const text = [
      "CREATE TABLE a (id integer);",
      "-- two lines\nCREATE TABLE b (id integer);",
      "ALTER TABLE b\n    ADD COLUMN x nope;",
    ].join(sep);
    const m = fromText(text);
    const third = m.statements[2] ?? "";
    expect(locate(m, 2, third.indexOf("nope") + 1)).toEqual(editorPosition(text, "nope"));
    expect(editorPosition(text, "nope")).toEqual({ line: 7, column: 18 });
  });

  // Regression: PostgreSQL's position counts characters; an emoji (two UTF-16 units) earlier in
  // the statement moved the reported column left by one per emoji.
  it("counts characters, not UTF-16 units, as PostgreSQL does", () => {
    const text = ["-- café 🎉 notes\nCREATE TABLE a (id int);", "\n-- 🎉🎉 déjà\nSELECT 🎉, nope_col FROM a;"].join(STATEMENT_BREAKPOINT);
    const m = fromText(text);
    const second = m.statements[1] ?? "";
    const characterPosition = [...second.slice(0, second.indexOf("nope_col"))].length + 1;
    expect(locate(m, 1, characterPosition)).toEqual({ line: 4, column: 11 });
  });

  it("points at the start of a statement for position 1", () => {
    const text = ["SELECT 1;", "SELECT 2;"].join(sep);
    const m = fromText(text);
    // Statement 2 begins with the newline after the breakpoint.
    expect(locate(m, 1, 2)).toEqual(editorPosition(text, "SELECT 2"));
  });
});

describe("readMigrations", () => {
  it("reads drizzle-kit's journal with drizzle's own hashes, splitting at breakpoints", () => {
    const text = ["CREATE TABLE a (id integer);", "CREATE TABLE b (id integer);"].join(sep);
    const folder = write({ "0000_first": text, "0001_second": "SELECT 1;\n" });
    const migrations = readMigrations(folder);
    expect(migrations.map((m) => [m.tag, m.when])).toEqual([
      ["0000_first", 1_000],
      ["0001_second", 1_001],
    ]);
    expect(migrations[0]?.hash).toBe(createHash("sha256").update(text).digest("hex"));
    expect(migrations[0]?.statements).toHaveLength(2);
    expect(migrations[0]?.file.endsWith("0000_first.sql")).toBe(true);
    // The offsets put every statement back where it was in the file.
    const first = migrations[0] as Migration;
    first.statements.forEach((statement, i) => {
      const at = first.offsets[i] ?? -1;
      expect(text.slice(at, at + statement.length)).toBe(statement);
    });
  });

  it("marks a file whose first line is the no-transaction marker, and only that", () => {
    const folder = write({
      "0000_concurrent": `${NO_TRANSACTION_MARKER}\nCREATE INDEX CONCURRENTLY i ON t (c);\n`,
      "0001_crlf": `${NO_TRANSACTION_MARKER}\r\nCREATE INDEX CONCURRENTLY j ON t (c);\r\n`,
      "0002_later_line": `SELECT 1;\n${NO_TRANSACTION_MARKER}\n`,
      "0003_prose": `-- yomu:no-transaction is not needed here\nSELECT 1;\n`,
      "0004_plain": "SELECT 1;\n",
    });
    expect(readMigrations(folder).map((m) => [m.tag, m.noTransaction])).toEqual([
      ["0000_concurrent", true],
      ["0001_crlf", true],
      ["0002_later_line", false],
      ["0003_prose", false],
      ["0004_plain", false],
    ]);
  });
});

describe("findTransactionControl", () => {
  it.each([
    ["COMMIT;", "COMMIT"],
    ["commit work;", "COMMIT"],
    ["END;", "END"],
    ["ROLLBACK;", "ROLLBACK"],
    ["abort;", "ABORT"],
    ["PREPARE TRANSACTION 'x';", "PREPARE"],
    ["CREATE TABLE a (id int); COMMIT; CREATE TABLE b (id int);", "COMMIT"],
    ["CREATE TABLE a (id int);commit;", "COMMIT"],
    ["-- tidy up\n/* done */ COMMIT;", "COMMIT"],
  ])("finds %j", (text, keyword) => {
    expect(findTransactionControl(fromText(text))?.keyword).toBe(keyword);
  });

  it.each([
    "CREATE TABLE commits (id int);",
    "BEGIN;",
    "SAVEPOINT s; ROLLBACK TO SAVEPOINT s; RELEASE s;",
    "ROLLBACK TO s;",
    "INSERT INTO log VALUES ('x; COMMIT;');",
    "INSERT INTO log VALUES (E'it\\'s; COMMIT;');",
    'CREATE TABLE "x;commit" (id int);',
    "-- COMMIT;\nSELECT 1;",
    "/* COMMIT; /* nested */ COMMIT; */ SELECT 1;",
    "CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN PERFORM 1; END; $$;",
    "DO $body$ BEGIN COMMIT; END $body$;",
    "SELECT $1::int; SELECT end_date FROM t;",
  ])("leaves %j alone", (text) => {
    expect(findTransactionControl(fromText(text))).toBeUndefined();
  });

  it("names the statement, line and column of the COMMIT in the file", () => {
    const text = ["CREATE TABLE a (id int);", "CREATE TABLE b (id int);\n /* 🎉 */ COMMIT;", "CREATE TABLE c (id int);"].join(sep);
    expect(findTransactionControl(fromText(text))).toEqual({ statement: 2, keyword: "COMMIT", ...editorPosition(text, "COMMIT") });
  });
});
