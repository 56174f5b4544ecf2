import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { type Migration, NO_TRANSACTION_MARKER, readMigrations, STATEMENT_BREAKPOINT } from "./journal.js";

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
