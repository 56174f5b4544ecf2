import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../../test/support/database.js";
import { CLI, runCli } from "./support/cli.js";
import { MigrationsFolder } from "./support/migrations.js";

const repo = fileURLToPath(new URL("../../../", import.meta.url));

/** Runs `yomu-migrate lint` from `cwd` (the repository root by default, where .squawk.toml is). */
function lint(args: string[], options: { cwd?: string; env?: Record<string, string> } = {}) {
  const run = spawnSync(process.execPath, [CLI, "lint", ...args], {
    cwd: options.cwd ?? repo,
    env: { PATH: process.env.PATH, ...options.env },
    encoding: "utf8",
  });
  // Not a terminal: every stdout line is a JSON event (specs/114-drizzle-kit-k8s-migration/contracts/migrator-cli.md, Output).
  const events = run.stdout
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const findings = events
    .filter((e) => e.event === "migration.lint.finding")
    .map((e) => ({ file: e.file as string, line: e.line as number, rule: e.rule as string }));
  return { code: run.status, stdout: run.stdout, stderr: run.stderr, findings, events };
}

describe("lint rules for rolling deploys", () => {
  const folder = new MigrationsFolder();
  afterAll(() => folder.remove());

  it("names each unsafe change as file:line rule, and exits 6", () => {
    const m = folder.add({
      name: "unsafe",
      statements: [
        'ALTER TABLE "bookmarks" RENAME COLUMN "title" TO "name";',
        'ALTER TABLE "users" ADD COLUMN "age" integer NOT NULL;',
        'ALTER TABLE "users" DROP COLUMN "name";',
        'ALTER TABLE "sessions" ALTER COLUMN "token_hash" SET DATA TYPE varchar(64);',
        'ALTER TABLE "users" RENAME TO "accounts";',
      ],
    });
    const run = lint([m.file]);
    expect(run.code).toBe(6);
    const ours = run.findings.filter((f) => f.rule.startsWith("rolling-"));
    expect(ours).toEqual([
      { file: m.file, line: 1, rule: "rolling-rename" },
      { file: m.file, line: 3, rule: "rolling-not-null-without-default" },
      { file: m.file, line: 5, rule: "rolling-drop-column" },
      { file: m.file, line: 7, rule: "rolling-change-type" },
      { file: m.file, line: 9, rule: "rolling-rename" },
    ]);
    expect(run.stdout).toContain("5 finding(s) in 1 migration file(s)");
  });

  it("passes what a rolling deploy survives: nullable or defaulted columns, new tables, concurrent indexes", () => {
    const safe = folder.add({
      name: "safe",
      statements: [
        'ALTER TABLE "bookmarks" ADD COLUMN "note" text;',
        'ALTER TABLE "bookmarks" ADD COLUMN "pinned" boolean DEFAULT false NOT NULL;',
        'CREATE TABLE "tags" ("id" serial PRIMARY KEY NOT NULL, "name" text NOT NULL);',
        'ALTER TABLE "tags" ADD COLUMN "slug" text NOT NULL;',
      ],
    });
    const index = folder.add({
      name: "index_note",
      header: "-- yomu:no-transaction",
      statements: ['CREATE INDEX CONCURRENTLY IF NOT EXISTS "bookmarks_note_idx" ON "bookmarks" ("note");'],
    });
    const run = lint([safe.file, index.file]);
    expect(run.stdout).toContain("0 finding(s) in 2 migration file(s)");
    expect(run.code).toBe(0);
  });

  it("runs squawk's rules: a plain CREATE INDEX on a live table blocks writes", () => {
    const m = folder.add({ name: "plain_index", statements: ['CREATE INDEX "bookmarks_url_idx" ON "bookmarks" ("url");'] });
    const run = lint([m.file]);
    expect(run.code).toBe(6);
    expect(run.findings).toEqual([{ file: m.file, line: 1, rule: "require-concurrent-index-creation" }]);
  });

  it("accepts a reviewed exception with a reason, and flags one without", () => {
    const reviewed = folder.add({
      name: "reviewed",
      statements: [
        '-- lint-ignore rolling-drop-column: nothing reads legacy_flag since 1.2, see the expand/contract steps\nALTER TABLE "users" DROP COLUMN "legacy_flag";',
      ],
    });
    expect(lint([reviewed.file]).code).toBe(0);
    const bare = folder.add({
      name: "bare",
      statements: ['-- lint-ignore rolling-drop-column\nALTER TABLE "users" DROP COLUMN "legacy_flag";'],
    });
    const run = lint([bare.file]);
    expect(run.code).toBe(6);
    expect(run.findings.map((f) => f.rule).sort()).toEqual(["lint-ignore-without-reason", "rolling-drop-column"]);
  });

  it("exempts the idempotent baseline by name, so the repository's migrations lint clean", () => {
    const run = lint([
      "drizzle/migrations/" +
        execFileSync("ls", [join(repo, "drizzle/migrations")], { encoding: "utf8" })
          .split("\n")
          .find((f) => f.endsWith("_initial_schema.sql")),
    ]);
    expect(run.code).toBe(0);
    expect(run.findings).toEqual([]);
  });
});

describe("which migrations lint checks", () => {
  let db: TestDatabase;
  const folder = new MigrationsFolder([
    { name: "create_notes", statements: ['CREATE TABLE "notes" ("id" serial PRIMARY KEY, "body" text)'] },
  ]);
  beforeAll(async () => {
    db = await createTestDatabase("lint");
  });
  afterAll(async () => {
    await db.drop();
    folder.remove();
  });

  it("with a database and no files, only the pending ones", async () => {
    expect((await runCli([], { DATABASE_URL: db.url, MIGRATIONS_DIR: folder.dir })).code).toBe(0);
    // Applied already: its DROP COLUMN would be a finding if it were checked.
    const applied = folder.add({ name: "drop_body", statements: ['ALTER TABLE "notes" DROP COLUMN "body"'] });
    expect((await runCli([], { DATABASE_URL: db.url, MIGRATIONS_DIR: folder.dir })).code).toBe(0);
    const pending = folder.add({ name: "rename", statements: ['ALTER TABLE "notes" RENAME COLUMN "id" TO "note_id"'] });
    const run = lint([], { env: { DATABASE_URL: db.url, MIGRATIONS_DIR: folder.dir } });
    expect(run.code).toBe(6);
    expect(run.findings.map((f) => f.file)).toEqual([expect.stringContaining(pending.tag)]);
    expect(run.stdout).not.toContain(applied.tag);
  });

  it("exempts a table an earlier pending migration creates: the running app has never seen it", async () => {
    const fresh = new MigrationsFolder([{ name: "base", statements: ['CREATE TABLE "kept" ("id" int)'] }]);
    const other = await createTestDatabase("lint_batch");
    try {
      expect((await runCli([], { DATABASE_URL: other.url, MIGRATIONS_DIR: fresh.dir })).code).toBe(0);
      fresh.add({ name: "create_drafts", statements: ['CREATE TABLE "drafts" ("id" int, "body" text)'] });
      const later = fresh.add({
        name: "reshape",
        statements: ['ALTER TABLE "drafts" DROP COLUMN "body"', 'ALTER TABLE "kept" DROP COLUMN "id"'],
      });
      const run = lint([], { env: { DATABASE_URL: other.url, MIGRATIONS_DIR: fresh.dir } });
      expect(run.findings).toEqual([{ file: expect.stringContaining(later.tag), line: 3, rule: "rolling-drop-column" }]);
    } finally {
      await other.drop();
      fresh.remove();
    }
  });

  it("with --base, the migrations added since that branch, and one older than its newest", () => {
    const work = mkdtempSync(join(tmpdir(), "yomu-lint-git-"));
    const git = (...args: string[]) =>
      execFileSync("git", ["-C", work, "-c", "user.name=t", "-c", "user.email=t@example.com", ...args], { encoding: "utf8" });
    try {
      const branch = new MigrationsFolder([{ name: "first", when: Date.UTC(2026, 0, 1), statements: ['CREATE TABLE "a" ("id" int)'] }]);
      cpSync(branch.dir, join(work, "migrations"), { recursive: true });
      cpSync(join(repo, ".squawk.toml"), join(work, ".squawk.toml"));
      git("init", "-q", "-b", "main");
      git("add", ".");
      git("commit", "-qm", "first");
      git("checkout", "-qb", "feature");
      // The feature branch generated its migration on Jan 2; main merged one from Jan 3 meanwhile.
      branch.add({ name: "feature_change", when: Date.UTC(2026, 0, 2), statements: ['ALTER TABLE "a" ADD COLUMN "b" text'] });
      cpSync(branch.dir, join(work, "migrations"), { recursive: true });
      git("add", ".");
      git("commit", "-qm", "feature");
      git("checkout", "-q", "main");
      const main = new MigrationsFolder([
        { name: "first", when: Date.UTC(2026, 0, 1), statements: ['CREATE TABLE "a" ("id" int)'] },
        { name: "main_change", when: Date.UTC(2026, 0, 3), statements: ['ALTER TABLE "a" ADD COLUMN "c" text'] },
      ]);
      cpSync(main.dir, join(work, "migrations"), { recursive: true });
      git("add", ".");
      git("commit", "-qm", "main");
      git("checkout", "-q", "feature");
      writeFileSync(join(work, "scratch.txt"), "");
      const run = lint(["--base", "main", "--dir", "migrations"], { cwd: work });
      expect(run.code).toBe(6);
      expect(run.findings).toEqual([{ file: join("migrations", `${branch.tags[1]}.sql`), line: 1, rule: "out-of-order" }]);
      expect(run.stdout).toContain(main.tags[1]);
      branch.remove();
      main.remove();
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });

  it("refuses to guess: no files, no --base and no database is a usage error", () => {
    const run = lint([]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("no database");
  });
});

describe("lint in any repository", () => {
  const outside = mkdtempSync(join(tmpdir(), "yomu-lint-outside-"));
  afterAll(() => rmSync(outside, { recursive: true, force: true }));

  /** A drizzle-kit folder in a temp directory: no .squawk.toml anywhere above it. */
  function folderOutside(
    specs: Array<{ name: string; statements: string[]; header?: string }>,
    separator = "\n--> statement-breakpoint\n",
  ) {
    const dir = mkdtempSync(join(outside, "migrations-"));
    return specs.map((spec, i) => {
      const file = join(dir, `2026010${i + 1}000000_${spec.name}.sql`);
      writeFileSync(file, `${spec.header ? `${spec.header}\n` : ""}${spec.statements.join(separator)}\n`);
      return file;
    });
  }

  it("finds no config outside this repository and still reports an additive migration clean", () => {
    const [file] = folderOutside([
      {
        name: "additive",
        statements: [
          'CREATE TABLE "tags" ("id" serial PRIMARY KEY NOT NULL, "name" varchar(64) NOT NULL, "created_at" timestamp DEFAULT now())',
          'ALTER TABLE "bookmarks" ADD COLUMN "note" text',
          'ALTER TABLE "bookmarks" ADD COLUMN "pinned" boolean DEFAULT false NOT NULL',
        ],
      },
    ]);
    const run = lint([file as string], { cwd: outside });
    // Without the built-in defaults squawk reported require-lock-timeout, require-statement-timeout,
    // prefer-identity, prefer-text-field and prefer-timestamp-tz here.
    expect(run.findings).toEqual([]);
    expect(run.code).toBe(0);
  });

  it("splits at breakpoints first: a missing ; before one is not a syntax error", () => {
    const [file] = folderOutside(
      [{ name: "no_semicolons", statements: ['ALTER TABLE "a" ADD COLUMN "b" text', 'ALTER TABLE "a" ADD COLUMN "c" text'] }],
      "\n--> statement-breakpoint\n",
    );
    const run = lint([file as string], { cwd: outside });
    expect(run.findings).toEqual([]);
  });

  it("reports a real syntax error from PostgreSQL's parser, at its line", () => {
    const [file] = folderOutside([
      { name: "typo", statements: ['ALTER TABLE "a" ADD COLUMN "b" text', 'ALTER TABLE "a" ADDD COLUMN "c" text'] },
    ]);
    const run = lint([file as string], { cwd: outside });
    expect(run.findings).toEqual([{ file, line: 3, rule: "syntax-error" }]);
  });

  it("gives every finding a rule, file, line, column, message and a link to the rule's documentation", () => {
    const [file] = folderOutside([
      { name: "index_and_drop", statements: ['CREATE INDEX "i" ON "a" ("b")', 'ALTER TABLE "a" DROP COLUMN "c"'] },
    ]);
    const run = lint([file as string], { cwd: outside });
    const found = run.events.filter((e) => e.event === "migration.lint.finding");
    expect(found.map((e) => [e.rule, e.line, e.column, e.docs])).toEqual([
      ["require-concurrent-index-creation", 1, 1, "https://squawkhq.com/docs/require-concurrent-index-creation"],
      ["rolling-drop-column", 3, 1, expect.stringMatching(/contracts\/migrator-cli\.md#rolling-drop-column$/)],
    ]);
    for (const e of found) expect(e.message).toEqual(expect.stringContaining(`${file}:${e.line}:${e.column} ${e.rule} `));
  });

  it("exempts a table created earlier in the same file, not one created in another named file", () => {
    const [create, drop] = folderOutside([
      { name: "create", statements: ['CREATE TABLE "drafts" ("id" int, "body" text)', 'ALTER TABLE "drafts" DROP COLUMN "body"'] },
      { name: "drop_later", statements: ['ALTER TABLE "drafts" DROP COLUMN "id"'] },
    ]);
    const run = lint([create as string, drop as string], { cwd: outside });
    // Linting a whole history used to hide this: "drafts" is created somewhere in the files.
    expect(run.findings).toEqual([{ file: drop, line: 1, rule: "rolling-drop-column" }]);
  });

  it("warns that a file opening and committing its own transactions is not atomic", () => {
    const [file] = folderOutside([{ name: "own_transactions", statements: ["BEGIN;\nCREATE TABLE IF NOT EXISTS x (id int);\nCOMMIT;"] }]);
    const run = lint([file as string], { cwd: outside });
    expect(run.findings).toEqual([{ file, line: 1, rule: "not-atomic" }]);
  });

  // Kinds of wrong findings public drizzle-kit histories showed (bench/lint/corpus.mjs).
  it("takes an empty piece (a file that starts or ends with a breakpoint) for the empty query it is", () => {
    const [file] = folderOutside([{ name: "empty_pieces", statements: [] }]);
    writeFileSync(file as string, '--> statement-breakpoint\nALTER TABLE "a" ADD COLUMN "b" text;--> statement-breakpoint');
    // PostgreSQL's parser says "Query cannot be empty" for "" and squawk's report was syntax-error.
    expect(lint([file as string], { cwd: outside }).findings).toEqual([]);
  });

  it("knows the runner opens the block a leading COMMIT ends and commits one a trailing BEGIN leaves open", () => {
    const [file] = folderOutside([
      {
        name: "concurrent_between_commits",
        statements: ["COMMIT;", 'CREATE INDEX CONCURRENTLY IF NOT EXISTS "a_b_idx" ON "a" ("b");', "BEGIN;"],
      },
    ]);
    // squawk alone said transaction-nesting and ban-uncommitted-transaction; not-atomic is the truth.
    expect(lint([file as string], { cwd: outside }).findings).toEqual([{ file, line: 1, rule: "not-atomic" }]);
  });

  it("does not ask for BEFORE/AFTER on an enum value drizzle-kit appends, as schema.ts does", () => {
    const [file] = folderOutside([{ name: "enum_value", statements: ['ALTER TYPE "public"."state" ADD VALUE \'archived\';'] }]);
    expect(lint([file as string], { cwd: outside }).findings).toEqual([]);
  });

  it("adds the nearest .squawk.toml above the folder to the defaults: its exclusions, and a default turned back on", () => {
    const project = mkdtempSync(join(outside, "project-"));
    // A quoted "word" in a comment is a comment, not a rule (it once reached squawk as one).
    writeFileSync(
      join(project, ".squawk.toml"),
      '# see "Lint rules" in the contract\nexcluded_rules = ["require-concurrent-index-creation"] # "ours"\nincluded_rules = ["prefer-text-field"]\n',
    );
    mkdirSync(join(project, "db", "migrations"), { recursive: true });
    const file = join(project, "db", "migrations", "0001_x.sql");
    writeFileSync(file, 'CREATE INDEX "i" ON "a" ("b");\n--> statement-breakpoint\nALTER TABLE "a" ADD COLUMN "c" varchar(20);\n');
    const run = lint([file], { cwd: outside });
    expect(run.code).toBe(6);
    expect(run.findings).toEqual([{ file, line: 3, rule: "prefer-text-field" }]);
  });

  it("refuses --base together with named files (exit 2) instead of dropping one", () => {
    const [file] = folderOutside([{ name: "x", statements: ['ALTER TABLE "a" ADD COLUMN "b" text'] }]);
    const run = lint(["--base", "HEAD", file as string], { cwd: outside });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("not both");
  });

  it("puts only JSON on stdout when it is not a terminal", () => {
    const [file] = folderOutside([{ name: "y", statements: ['ALTER TABLE "a" DROP COLUMN "b"'] }]);
    const run = lint([file as string], { cwd: outside });
    const lines = run.stdout.split("\n").filter((l) => l !== "");
    expect(lines.length).toBe(2);
    for (const line of lines) expect(() => JSON.parse(line)).not.toThrow();
  });
});
