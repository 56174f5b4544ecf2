import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readMigrationFiles as drizzle045Files } from "drizzle-orm/migrator";
import { readMigrationFiles as drizzle1Files } from "drizzle-orm-v1/migrator";
import { afterAll, describe, expect, it } from "vitest";
import { MigratorError } from "./errors.js";
import { readMigrationFolder } from "./journal.js";
import { firstInvalidUtf8 } from "./migration-file.js";

const root = mkdtempSync(join(tmpdir(), "yomu-journal-checks-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

type Entry = { tag: string; when?: unknown; idx?: number; text?: string | Buffer };

/** A drizzle-kit 0.x folder; `when` defaults to 1000 × (position + 1), idx to the position. */
function journalFolder(entries: Entry[], extra: Record<string, string> = {}): string {
  const folder = mkdtempSync(join(root, "j-"));
  mkdirSync(join(folder, "meta"));
  const journal = entries.map((e, i) => ({
    idx: e.idx ?? i,
    version: "7",
    when: e.when ?? 1_000 * (i + 1),
    tag: e.tag,
    breakpoints: true,
  }));
  writeFileSync(join(folder, "meta", "_journal.json"), JSON.stringify({ version: "7", dialect: "postgresql", entries: journal }));
  for (const e of entries) if (e.text !== undefined) writeFileSync(join(folder, `${e.tag}.sql`), e.text);
  for (const [name, text] of Object.entries(extra)) writeFileSync(join(folder, name), text);
  return folder;
}

/** A drizzle-kit 1.0 folder: `<name>/migration.sql` for each entry. */
function folders(files: Record<string, string | Buffer>, into = mkdtempSync(join(root, "v1-"))): string {
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(into, name), { recursive: true });
    writeFileSync(join(into, name, "migration.sql"), text);
    writeFileSync(join(into, name, "snapshot.json"), "{}");
  }
  return into;
}

function refusal(dir: string): MigratorError {
  try {
    readMigrationFolder(dir);
  } catch (error) {
    if (error instanceof MigratorError) return error;
    throw error;
  }
  throw new Error(`${dir} was read without complaint`);
}

describe("drizzle-kit 1.0's folder layout", () => {
  it("reads folders in drizzle-orm 1.0's order with its hash, name and created_at", () => {
    const dir = folders({
      "20260105093100_books": "CREATE TABLE books (id int);\n--> statement-breakpoint\nCREATE INDEX b ON books (id);\n",
      "20260105093000_authors": "CREATE TABLE authors (id int);\n",
      "20260105093000_authors_more": "ALTER TABLE authors ADD COLUMN n text;\n",
    });
    writeFileSync(join(dir, ".migration-lock"), "");
    mkdirSync(join(dir, "notes"));
    const { layout, migrations, warnings } = readMigrationFolder(dir);
    expect(layout).toBe("folders");
    expect(warnings).toEqual([]);
    const theirs = drizzle1Files({ migrationsFolder: dir });
    expect(migrations.map((m) => ({ name: m.name, hash: m.hash, when: m.when, sql: m.statements }))).toEqual(
      theirs.map((m) => ({ name: m.name, hash: m.hash, when: m.folderMillis, sql: m.sql })),
    );
    expect(migrations.map((m) => m.tag)).toEqual(["20260105093000_authors", "20260105093000_authors_more", "20260105093100_books"]);
  });

  it("refuses a folder that also holds a journal, as drizzle-orm 1.0 and drizzle-kit 1.0 do", () => {
    const dir = journalFolder([{ tag: "0000_a", text: "SELECT 1;" }]);
    folders({ "20260105093000_b": "SELECT 2;" }, dir);
    const error = refusal(dir);
    expect(error.message).toContain("holds both drizzle-kit 0.x's meta/_journal.json and drizzle-kit 1.0 migration folders");
    expect(error.hint).toContain("drizzle-kit up");
    expect(error.exitCode).toBe(2);
  });

  it("says what it looked for in a folder holding neither layout, with a generic hint", () => {
    const error = refusal(mkdtempSync(join(root, "empty-")));
    expect(error.message).toContain("neither meta/_journal.json (drizzle-kit 0.x) nor <YYYYMMDDHHMMSS>_<name>/migration.sql");
    expect(error.hint).toContain("drizzle-kit generate");
    expect(error.hint).not.toContain("pnpm");
  });

  it("refuses a folder name without the timestamp drizzle-orm 1.0 records (it would record NaN)", () => {
    const error = refusal(folders({ "20260105093000_ok": "SELECT 1;", init: "SELECT 2;" }));
    expect(error.message).toContain("folder init does not start with a YYYYMMDDHHMMSS timestamp");
  });
});

describe("journal checks", () => {
  it("refuses a tag that leaves the migrations folder, reading nothing outside it", () => {
    const outside = join(root, "escape.sql");
    writeFileSync(outside, "DROP TABLE users;");
    const error = refusal(journalFolder([{ tag: "0000_ok", text: "SELECT 1;" }, { tag: "../escape" }]));
    expect(error.message).toContain('tag "../escape" points outside');
    expect(error.exitCode).toBe(2);
  });

  it("names the file and line of a byte that is not UTF-8 (drizzle would apply U+FFFD in its place)", () => {
    const latin1 = Buffer.concat([
      Buffer.from("CREATE TABLE t (name text);\nINSERT INTO t VALUES ('caf"),
      Buffer.from([0xe9]),
      Buffer.from("');\n"),
    ]);
    const error = refusal(journalFolder([{ tag: "0000_latin1", text: latin1 }]));
    expect(error.message).toMatch(/0000_latin1\.sql:2 is not valid UTF-8 \(byte 0xe9\)/);
    expect(error.exitCode).toBe(2);
  });

  it.each([
    ["a lone continuation byte", [0x80]],
    ["an overlong slash", [0xc0, 0xaf]],
    ["a UTF-16 surrogate", [0xed, 0xa0, 0x80]],
    ["a sequence cut short by the end of the file", [0xe2, 0x82]],
  ])("finds %s", (_name, bytes) => {
    const found = firstInvalidUtf8(Buffer.concat([Buffer.from("ok\n"), Buffer.from(bytes)]));
    expect(found).toEqual({ line: 2, offset: 3, byte: bytes[0] });
  });

  it("accepts every well-formed sequence, from ASCII to four bytes", () => {
    expect(firstInvalidUtf8(Buffer.from("a é € 🎉 \u{10ffff}")).offset).toBe(-1);
  });

  it("drops a byte-order mark from the SQL, keeps drizzle's hash, and says so", () => {
    const text = "\ufeffCREATE TABLE t (id int);\n--> statement-breakpoint\nSELECT 1;\n";
    const dir = journalFolder([{ tag: "0000_bom", text }]);
    const { migrations, warnings } = readMigrationFolder(dir);
    expect(migrations[0]?.statements[0]).toBe("CREATE TABLE t (id int);\n");
    expect(migrations[0]?.hash).toBe(drizzle045Files({ migrationsFolder: dir })[0]?.hash);
    expect(warnings.map((w) => w.code)).toEqual(["byte-order-mark"]);
  });

  it("applies `when` going backwards and gaps in idx in journal order, warning with the pair named", () => {
    const dir = journalFolder([
      { tag: "0000_a", when: 5_000, idx: 0, text: "SELECT 1;" },
      { tag: "0001_b", when: 3_000, idx: 1, text: "SELECT 2;" },
      { tag: "0003_c", when: 6_000, idx: 3, text: "SELECT 3;" },
    ]);
    const { migrations, warnings } = readMigrationFolder(dir);
    expect(migrations.map((m) => m.tag)).toEqual(["0000_a", "0001_b", "0003_c"]);
    expect(warnings.map((w) => [w.code, w.tags])).toEqual([
      ["when-backwards", ["0000_a", "0001_b"]],
      ["idx-gap", ["0001_b", "0003_c"]],
    ]);
    expect(warnings[0]?.message).toContain("would silently skip 0001_b on a database already past 0000_a");
  });

  it("refuses a fractional `when` by name: drizzle fails on it (created_at is a bigint)", () => {
    const error = refusal(journalFolder([{ tag: "0000_a", when: 1_700_000_000_000.5, text: "SELECT 1;" }]));
    expect(error.message).toContain('entry 0000_a has "when" 1700000000000.5, not a whole number of milliseconds');
    expect(error.message).not.toContain("no numeric");
  });

  it("takes a whole `when` written with a decimal point, as JSON does", () => {
    const dir = mkdtempSync(join(root, "float-"));
    mkdirSync(join(dir, "meta"));
    writeFileSync(join(dir, "meta", "_journal.json"), '{"entries":[{"idx":0,"when":1700000000000.0,"tag":"0000_a"}]}');
    writeFileSync(join(dir, "0000_a.sql"), "SELECT 1;");
    expect(readMigrationFolder(dir).migrations[0]?.when).toBe(1_700_000_000_000);
  });

  it("warns about an empty file and a .sql file the journal does not list", () => {
    const dir = journalFolder(
      [
        { tag: "0000_empty", text: " \n\n" },
        { tag: "0001_bom_only", text: "\ufeff\n" },
      ],
      {
        "0002_stray.sql": "SELECT 1;",
        "0000_empty.down.sql": "SELECT 1;",
      },
    );
    const { warnings } = readMigrationFolder(dir);
    expect(warnings.map((w) => [w.code, w.tags])).toEqual([
      ["not-in-journal", ["0002_stray"]],
      ["empty-file", ["0000_empty"]],
      ["empty-file", ["0001_bom_only"]],
      ["byte-order-mark", ["0001_bom_only"]],
    ]);
  });

  it("hashes without holding the text: statements are read from disk only when first used", () => {
    const dir = journalFolder([{ tag: "0000_a", text: "SELECT 1;" }]);
    const [migration] = readMigrationFolder(dir).migrations;
    writeFileSync(join(dir, "0000_a.sql"), "SELECT 2;");
    expect(migration?.hash).toBe(createHash("sha256").update("SELECT 1;").digest("hex"));
    expect(migration?.statements).toEqual(["SELECT 2;"]);
  });

  it("splits a file larger than a read chunk exactly as drizzle-orm does, breakpoints and characters straddling chunks", () => {
    // Read in 64 KiB chunks and 1 MiB windows: pieces of varied length put breakpoints and multi-byte
    // characters across every boundary of both.
    const pieces = Array.from({ length: 30_000 }, (_, i) => `INSERT INTO t VALUES (${i}, '${"é🎉x".repeat(i % 17)}');\n`);
    const text = pieces.join("--> statement-breakpoint\n");
    const dir = journalFolder([{ tag: "0000_big", text }]);
    const [migration] = readMigrationFolder(dir).migrations;
    const statements = [...(migration?.statements ?? [])];
    expect(statements).toEqual(drizzle045Files({ migrationsFolder: dir })[0]?.sql);
    expect(migration?.offsets.map((at, i) => text.slice(at, at + (statements[i]?.length ?? 0)))).toEqual(statements);
  });

  it("reads a piece longer than a window whole, and the pieces around it after it", () => {
    const long = `INSERT INTO t VALUES ${Array.from({ length: 60_000 }, (_, i) => `(${i}, 'é🎉')`).join(",\n")};\n`;
    const pieces = ["CREATE TABLE t (id int, v text);\n", long, "SELECT 1;\n", long, "SELECT 2;"];
    const text = pieces.join("--> statement-breakpoint\n");
    const dir = journalFolder([{ tag: "0000_long", text }]);
    const [migration] = readMigrationFolder(dir).migrations;
    expect(Buffer.byteLength(long)).toBeGreaterThan(1024 * 1024);
    // Out of order, so each piece is read after a different one.
    const order = [3, 1, 0, 2, 4, 1, 2];
    const split = text.split("--> statement-breakpoint");
    expect(order.map((i) => migration?.statements[i])).toEqual(order.map((i) => split[i]));
  });
});
