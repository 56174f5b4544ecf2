import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { BASELINE_TAG, baselineFile, rewriteBaseline } from "./baseline.js";
import { MigratorError } from "./errors.js";
import { readMigrations, STATEMENT_BREAKPOINT } from "./journal.js";

const repoMigrations = join(import.meta.dirname, "../../../drizzle/migrations");

// drizzle-kit 0.31's output for a schema with every kind of object the baseline handles.
const generated = [
  'CREATE SCHEMA "audit";\n',
  `CREATE TYPE "public"."mood" AS ENUM('happy', 'sad');`,
  'CREATE SEQUENCE "public"."ticket_seq" INCREMENT BY 1 MINVALUE 1 START WITH 1 CACHE 1;',
  `CREATE TABLE "users" (
\t"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
\t"email" text NOT NULL,
\t"mood" "mood" DEFAULT 'happy',
\tCONSTRAINT "users_email_unique" UNIQUE("email"),
\tCONSTRAINT "users_email_check" CHECK (position('@' in "email") > 1)
);\n`,
  `CREATE TABLE "memberships" (
\t"user_id" uuid NOT NULL,
\t"team_id" uuid NOT NULL,
\tCONSTRAINT "memberships_user_id_team_id_pk" PRIMARY KEY("user_id","team_id")
);\n`,
  'ALTER TABLE "memberships" ADD CONSTRAINT "memberships_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;',
  'CREATE INDEX "memberships_team_idx" ON "memberships" USING btree ("team_id" DESC NULLS LAST,"user_id");',
  'CREATE UNIQUE INDEX "users_lower_email_idx" ON "users" USING btree (lower("email"));',
].join(`${STATEMENT_BREAKPOINT}\n`);

function pieces(sql: string): string[] {
  return sql.split(STATEMENT_BREAKPOINT);
}

const result = await rewriteBaseline(generated);
const out = pieces(result.sql);

describe("rewriteBaseline", () => {
  it("adds IF NOT EXISTS to tables, schemas and sequences, and keeps every breakpoint", async () => {
    expect(out[0]?.trim()).toBe('CREATE SCHEMA IF NOT EXISTS "audit";');
    expect(out[2]?.trim()).toMatch(/^CREATE SEQUENCE IF NOT EXISTS "public"\."ticket_seq" INCREMENT BY 1/);
    expect(out[3]?.trim()).toMatch(/^CREATE TABLE IF NOT EXISTS "users" \(/);
    // Each original statement is still its own piece, in order, with the added ones between them.
    expect(out.length).toBeGreaterThan(pieces(generated).length);
    expect(result.untouched).toEqual([]);
  });

  it("creates an enum only when no type of that name exists", async () => {
    expect(out[1]).toContain(`DO ${BASELINE_TAG}`);
    expect(out[1]).toContain(`IF to_regtype('"public"."mood"') IS NULL THEN`);
    expect(out[1]).toContain(`CREATE TYPE "public"."mood" AS ENUM('happy', 'sad');`);
  });

  it("follows a CREATE TABLE with what an existing table of that name may lack", async () => {
    const columns = out.find((p) => p.includes('ALTER TABLE "users" ADD COLUMN IF NOT EXISTS'));
    // Only when a column is missing: ALTER TABLE would lock out the table's readers even as a no-op.
    expect(columns).toContain("unnest(ARRAY['id', 'email', 'mood']::text[]) AS wanted(name)");
    expect(columns).toContain(`a.attrelid = to_regclass('"users"') AND a.attname = wanted.name`);
    expect(columns).toContain(
      [
        `ALTER TABLE "users" ADD COLUMN IF NOT EXISTS "id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,`,
        `\t\t\tADD COLUMN IF NOT EXISTS "email" text NOT NULL,`,
        `\t\t\tADD COLUMN IF NOT EXISTS "mood" "mood" DEFAULT 'happy';`,
      ].join("\n"),
    );
    const unique = out.find((p) => p.includes('ADD CONSTRAINT "users_email_unique" UNIQUE("email")'));
    expect(unique).toContain("c.conname = 'users_email_unique'");
    // Any unique index on exactly (email) counts, except the ones this file itself creates.
    expect(unique).toContain("i.indisunique");
    expect(unique).toContain("ARRAY['users_pkey', 'users_email_unique', 'users_lower_email_idx']::text[]");
    expect(unique).toContain("= ARRAY['email']::text[]");
    const check = out.find((p) => p.includes('ADD CONSTRAINT "users_email_check" CHECK'));
    expect(check).toContain("c.conname = 'users_email_check'");
    const pk = out.find((p) => p.includes('ADD CONSTRAINT "memberships_user_id_team_id_pk" PRIMARY KEY'));
    expect(pk).toContain("c.contype = 'p'");
  });

  it("adds a foreign key unless one on the same columns to the same table exists under any name", async () => {
    const fk = out.find((p) => p.includes('FOREIGN KEY ("user_id") REFERENCES'));
    expect(fk).toContain("c.contype = 'f'");
    expect(fk).toContain("c.conname = 'memberships_user_id_users_id_fk'");
    expect(fk).toContain(`c.confrelid = to_regclass('"public"."users"')`);
    expect(fk).toContain("= ARRAY['user_id']::text[]");
    expect(fk).toContain("= ARRAY['id']::text[]");
  });

  it("compares an index's columns with their order and NULLS placement", async () => {
    const index = out.find((p) => p.includes('"memberships_team_idx"'));
    expect(index).toContain('CREATE INDEX IF NOT EXISTS "memberships_team_idx" ON "memberships"');
    expect(index).toContain("i.indisunique = false AND am.amname = 'btree'");
    expect(index).toContain("= ARRAY['team_id 1', 'user_id 0']::text[]");
  });

  it("gives an expression index only IF NOT EXISTS: there is nothing simple to compare", async () => {
    const index = out.find((p) => p.includes('"users_lower_email_idx"'));
    expect(index?.trim()).toBe('CREATE UNIQUE INDEX IF NOT EXISTS "users_lower_email_idx" ON "users" USING btree (lower("email"));');
  });

  it("is idempotent: rewriting its own output changes nothing", async () => {
    const again = await rewriteBaseline(result.sql);
    expect(again.changed).toBe(false);
    expect(again.sql).toBe(result.sql);
    expect(again.changes).toEqual([]);
  });

  it("reads back the same statements drizzle-orm will run, one per breakpoint", async () => {
    // Nothing the rewrite adds may hide a breakpoint inside a quoted block or a comment.
    for (const piece of out) expect(piece.trim().endsWith(";")).toBe(true);
  });
});

describe("rewriteBaseline on single statements", () => {
  it.each([
    ["DESC", '("a" DESC)', "a 3"],
    ["DESC NULLS LAST", '("a" DESC NULLS LAST)', "a 1"],
    ["ASC NULLS FIRST", '("a" NULLS FIRST)', "a 2"],
    ["a bare lower-case column", "(a)", "a 0"],
  ])("encodes %s as pg_index.indoption does", async (_label, columns, key) => {
    const { sql } = await rewriteBaseline(`CREATE INDEX "i" ON "t" ${columns};`);
    expect(sql).toContain(`ARRAY['${key}']::text[]`);
    expect(sql).toContain("am.amname = 'btree'");
  });

  it("leaves CREATE INDEX CONCURRENTLY outside a DO block, which PostgreSQL refuses to run it in", async () => {
    const { sql } = await rewriteBaseline('CREATE INDEX CONCURRENTLY "i" ON "t" USING btree ("a");');
    expect(sql).toBe('CREATE INDEX CONCURRENTLY IF NOT EXISTS "i" ON "t" USING btree ("a");');
  });

  it("guards a partial index by name only", async () => {
    const { sql } = await rewriteBaseline('CREATE INDEX "i" ON "t" USING btree ("a") WHERE "a" IS NOT NULL;');
    expect(sql).toBe('CREATE INDEX IF NOT EXISTS "i" ON "t" USING btree ("a") WHERE "a" IS NOT NULL;');
  });

  it("escapes quotes in names inside the literals it writes", async () => {
    const { sql } = await rewriteBaseline(`ALTER TABLE "it's" ADD CONSTRAINT "o'k" UNIQUE("x");`);
    expect(sql).toContain(`to_regclass('"it''s"')`);
    expect(sql).toContain("c.conname = 'o''k'");
  });

  it("adds IF NOT EXISTS to a lone ADD COLUMN", async () => {
    expect((await rewriteBaseline('ALTER TABLE "t" ADD COLUMN "c" integer;')).sql).toBe(
      'ALTER TABLE "t" ADD COLUMN IF NOT EXISTS "c" integer;',
    );
  });

  it("leaves an unnamed ADD PRIMARY KEY alone instead of mistaking it for a column", async () => {
    const result = await rewriteBaseline('ALTER TABLE "t" ADD PRIMARY KEY ("id");');
    expect(result.sql).toBe('ALTER TABLE "t" ADD PRIMARY KEY ("id");');
    expect(result.untouched[0]?.reason).toMatch(/unnamed constraint/);
  });

  it("names the statements it cannot make idempotent and leaves them as they are", async () => {
    const input = `INSERT INTO "t" VALUES (1);--> statement-breakpoint\nALTER TABLE "t" ALTER COLUMN "c" SET NOT NULL;--> statement-breakpoint\nALTER TABLE "t" ADD COLUMN "a" int, ADD COLUMN "b" int;`;
    const result = await rewriteBaseline(input);
    expect(result.sql).toBe(input);
    expect(result.changed).toBe(false);
    expect(result.untouched.map((u) => [u.statement, u.text])).toEqual([
      [1, 'INSERT INTO "t" VALUES (1)'],
      [2, 'ALTER TABLE "t" ALTER COLUMN "c" SET NOT NULL'],
      [3, 'ALTER TABLE "t" ADD COLUMN "a" int, ADD COLUMN "b" int'],
    ]);
    expect(result.untouched[2]?.reason).toMatch(/several actions/);
  });

  it("does not split at semicolons inside strings, quoted names, comments or dollar quotes", async () => {
    const input = `CREATE TABLE "a;b" ("c" text DEFAULT ';' /* ; */);\n-- ;\nCREATE FUNCTION f() RETURNS int AS $fn$ SELECT 1; $fn$ LANGUAGE sql;`;
    const result = await rewriteBaseline(input);
    expect(result.sql.startsWith(`CREATE TABLE IF NOT EXISTS "a;b" ("c" text DEFAULT ';' /* ; */);`)).toBe(true);
    expect(result.untouched.map((u) => u.text)).toEqual(["CREATE FUNCTION f() RETURNS int AS $fn$ SELECT 1; $fn$ LANGUAGE sql"]);
  });

  it("reads statements as PostgreSQL does: a comment before a keyword, a BEGIN ATOMIC body", async () => {
    const input = `/* built live */ CREATE INDEX /* why */ CONCURRENTLY "i" ON "t" ("a");\nCREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END;`;
    const result = await rewriteBaseline(input);
    expect(result.sql.startsWith('/* built live */ CREATE INDEX /* why */ CONCURRENTLY IF NOT EXISTS "i" ON "t" ("a");')).toBe(true);
    expect(result.untouched.map((u) => u.statement)).toEqual([2]);
  });

  it("refuses a file PostgreSQL cannot parse, naming the line", async () => {
    await expect(rewriteBaseline("CREATE TABLE a (id int);\nCREATE TABEL b (id int);")).rejects.toThrow(
      /baseline: the input:2:8 is not valid SQL: syntax error at or near "TABEL"/,
    );
  });

  it("keeps the no-transaction marker on the first line", async () => {
    const input = '-- yomu:no-transaction\nCREATE INDEX CONCURRENTLY "i" ON "t" ("a");\n';
    expect((await rewriteBaseline(input)).sql).toBe('-- yomu:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS "i" ON "t" ("a");\n');
  });

  it("picks another dollar-quote tag when the statement already holds ours", async () => {
    const { sql } = await rewriteBaseline(`CREATE TYPE "t" AS ENUM('$yomu_baseline$');`);
    expect(sql.startsWith("DO $yomu_baseline_1$\n")).toBe(true);
    expect(sql.trimEnd().endsWith("END $yomu_baseline_1$;")).toBe(true);
    expect((await rewriteBaseline(sql)).sql).toBe(sql);
  });
});

describe("the shipped initial migration", () => {
  it("is in baseline form, so the databases init.sql created are adopted, not broken", async () => {
    const [initial] = readMigrations(repoMigrations);
    expect(initial?.tag).toMatch(/_initial_schema$/);
    const text = readFileSync(join(repoMigrations, `${initial?.tag}.sql`), "utf8");
    expect((await rewriteBaseline(text)).changed).toBe(false);
    expect(text).not.toMatch(/CREATE (UNIQUE )?(TABLE|INDEX) (?!IF NOT EXISTS)/);
    expect(text).not.toMatch(/^ALTER TABLE [^\n]* ADD CONSTRAINT/m);
  });
});

describe("baselineFile", () => {
  const dir = mkdtempSync(join(tmpdir(), "yomu-baseline-"));

  it("rewrites a file in place, and --check then finds nothing to do", async () => {
    const file = join(dir, "0000_initial.sql");
    writeFileSync(file, generated);
    const checked = await baselineFile(file, { check: true });
    expect(checked).toMatchObject({ changed: true, written: false });
    expect(readFileSync(file, "utf8")).toBe(generated);
    expect(await baselineFile(file)).toMatchObject({ changed: true, written: true });
    expect(readFileSync(file, "utf8")).toBe((await rewriteBaseline(generated)).sql);
    expect(await baselineFile(file, { check: true })).toMatchObject({ changed: false, written: false });
  });

  it("names a missing file with the configuration exit code", async () => {
    const missing = join(dir, "nope.sql");
    let thrown: unknown;
    try {
      await baselineFile(missing);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(MigratorError);
    expect((thrown as MigratorError).exitCode).toBe(2);
    expect((thrown as MigratorError).message).toContain(missing);
  });
});
