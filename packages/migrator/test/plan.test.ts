// `yomu-migrate plan` against a real PostgreSQL: the locks and rewrites PostgreSQL itself reports
// for each pending statement, traced on a scratch copy, and the target left exactly as it was.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readCatalog } from "../../../test/support/catalog.js";
import { createTestDatabase, type TestDatabase } from "../../../test/support/database.js";
import { planLocks } from "../src/lock-plan.js";
import { runCli } from "./support/cli.js";
import { MigrationsFolder } from "./support/migrations.js";

const base = {
  name: "base",
  statements: [
    'CREATE TABLE "users" ("id" serial PRIMARY KEY NOT NULL, "email" text NOT NULL UNIQUE)',
    'CREATE TABLE "bookmarks" ("id" serial PRIMARY KEY NOT NULL, "url" text NOT NULL, "visits" integer DEFAULT 0 NOT NULL, "user_id" integer REFERENCES "users" ("id"))',
    'INSERT INTO "users" ("email") VALUES (\'a@example.com\')',
  ],
};

let db: TestDatabase;
const folders: MigrationsFolder[] = [];

/** A folder with the applied base and one pending migration made of `statements`. */
function pending(statements: string[], header?: string): MigrationsFolder {
  const folder = new MigrationsFolder([base]);
  folder.add({ name: "change", statements, header });
  folders.push(folder);
  return folder;
}

/**
 * Everything the target holds: its schema as the catalog prints it, and every row of every table
 * (drizzle's rows and the runs table included). Not pg_dump: the suite also runs on PostgreSQL 18,
 * which Debian's pg_dump 15 refuses.
 */
async function dump(target: TestDatabase): Promise<string> {
  const tables = await target.query<{ name: string }>(
    `SELECT format('%I.%I', n.nspname, c.relname) AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1`,
  );
  const data: Record<string, unknown> = {};
  for (const { name } of tables.rows) {
    data[name] = (await target.query(`SELECT coalesce(json_agg(t ORDER BY t::text), '[]') AS rows FROM ${name} t`)).rows[0]?.rows;
  }
  return JSON.stringify({ catalog: await readCatalog(target), data });
}

async function planOf(folder: MigrationsFolder, rows = 200) {
  const plan = await planLocks({ databaseUrl: db.url, dir: folder.dir, rows });
  expect(plan.migrations.map((m) => m.tag)).toEqual([folder.tags[1]]);
  return plan.migrations[0]?.statements ?? [];
}

let before: string;
beforeAll(async () => {
  db = await createTestDatabase("plan");
  const folder = new MigrationsFolder([base]);
  folders.push(folder);
  expect((await runCli([], { DATABASE_URL: db.url, MIGRATIONS_DIR: folder.dir })).code).toBe(0);
  before = await dump(db);
});

afterAll(async () => {
  // The target was only read: byte for byte the same dump after every plan in this file.
  expect(await dump(db)).toBe(before);
  await db.drop();
  for (const f of folders) f.remove();
});

describe("plan traces what PostgreSQL does", () => {
  it("ADD COLUMN with a volatile default rewrites the table under ACCESS EXCLUSIVE", async () => {
    const [s] = await planOf(pending(['ALTER TABLE "bookmarks" ADD COLUMN "token" uuid DEFAULT gen_random_uuid()']));
    expect(s).toMatchObject({
      index: 1,
      traced: true,
      locks: [{ relation: "public.bookmarks", mode: "AccessExclusiveLock", rows: 200 }],
      rewrites: ["public.bookmarks"],
      blocks: "reads and writes",
    });
    expect(s?.durationMs).toEqual(expect.any(Number));
  });

  it("ADD COLUMN with a constant default takes the same lock but rewrites nothing (PostgreSQL 11+)", async () => {
    const [s] = await planOf(pending(['ALTER TABLE "bookmarks" ADD COLUMN "pinned" boolean DEFAULT false NOT NULL']));
    expect(s).toMatchObject({ locks: [{ relation: "public.bookmarks", mode: "AccessExclusiveLock" }], rewrites: [] });
  });

  it("ALTER COLUMN ... TYPE integer to bigint rewrites the table", async () => {
    const [s] = await planOf(pending(['ALTER TABLE "bookmarks" ALTER COLUMN "visits" SET DATA TYPE bigint']));
    expect(s).toMatchObject({ locks: [{ relation: "public.bookmarks", mode: "AccessExclusiveLock" }], rewrites: ["public.bookmarks"] });
  });

  it("CREATE INDEX takes SHARE, which blocks writes and not reads, and rewrites nothing", async () => {
    const [s] = await planOf(pending(['CREATE INDEX "bookmarks_url_idx" ON "bookmarks" ("url")']));
    expect(s).toMatchObject({ locks: [{ relation: "public.bookmarks", mode: "ShareLock" }], rewrites: [], blocks: "writes" });
  });

  it("ADD CONSTRAINT ... NOT VALID, then VALIDATE CONSTRAINT under SHARE UPDATE EXCLUSIVE, which blocks nothing", async () => {
    const [add, validate] = await planOf(
      pending([
        'ALTER TABLE "bookmarks" ADD CONSTRAINT "visits_positive" CHECK ("visits" >= 0) NOT VALID',
        'ALTER TABLE "bookmarks" VALIDATE CONSTRAINT "visits_positive"',
      ]),
    );
    expect(add).toMatchObject({ locks: [{ relation: "public.bookmarks", mode: "AccessExclusiveLock" }], rewrites: [] });
    expect(validate).toMatchObject({
      index: 2,
      locks: [{ relation: "public.bookmarks", mode: "ShareUpdateExclusiveLock" }],
      rewrites: [],
      blocks: "nothing",
    });
  });

  it("traces statements in order, so a later one sees what an earlier one made", async () => {
    const [, index] = await planOf(
      pending(['ALTER TABLE "bookmarks" ADD COLUMN "note" text', 'CREATE INDEX "bookmarks_note_idx" ON "bookmarks" ("note")']),
    );
    expect(index).toMatchObject({ locks: [{ relation: "public.bookmarks", mode: "ShareLock" }] });
    expect(index?.error).toBeUndefined();
  });

  it("lists no lock on a table the same transaction created: no other session can see it yet", async () => {
    const [create, index] = await planOf(
      pending([
        'CREATE TABLE "tags" ("id" serial PRIMARY KEY, "user_id" integer REFERENCES "users" ("id"))',
        'CREATE INDEX ON "tags" ("user_id")',
      ]),
    );
    // The foreign key locks the existing users table; the new table itself is nobody's business.
    expect(create?.locks.map((l) => l.relation)).toEqual(["public.users"]);
    expect(index?.locks).toEqual([]);
  });

  it("lists CREATE INDEX CONCURRENTLY as not traced, with the SHARE UPDATE EXCLUSIVE lock PostgreSQL documents", async () => {
    const [s] = await planOf(
      pending(['CREATE INDEX CONCURRENTLY "bookmarks_visits_idx" ON "bookmarks" ("visits")'], "-- yomu:no-transaction"),
    );
    expect(s).toMatchObject({
      traced: false,
      locks: [{ relation: "public.bookmarks", mode: "ShareUpdateExclusiveLock" }],
      blocks: "nothing",
      note: expect.stringContaining("not traced"),
    });
  });

  it("lists VACUUM and DETACH PARTITION CONCURRENTLY as not traced, with the locks the manual gives for them", async () => {
    const [plain, full] = await planOf(pending(['VACUUM "bookmarks"', 'VACUUM (FULL) "bookmarks"'], "-- yomu:no-transaction"));
    expect(plain).toMatchObject({
      traced: false,
      locks: [{ relation: "public.bookmarks", mode: "ShareUpdateExclusiveLock" }],
      blocks: "nothing",
    });
    expect(full).toMatchObject({
      traced: false,
      locks: [{ relation: "public.bookmarks", mode: "AccessExclusiveLock" }],
      blocks: "reads and writes",
    });
  });

  it("names both tables of a DETACH PARTITION CONCURRENTLY, which runs outside a transaction", async () => {
    const folder = new MigrationsFolder([
      {
        name: "partitions",
        statements: [
          'CREATE TABLE "events" ("at" date NOT NULL) PARTITION BY RANGE ("at")',
          "CREATE TABLE \"events_2026\" PARTITION OF \"events\" FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')",
        ],
      },
    ]);
    folders.push(folder);
    const own = await createTestDatabase("plan_detach");
    try {
      expect((await runCli(["up"], { DATABASE_URL: own.url, MIGRATIONS_DIR: folder.dir })).code).toBe(0);
      folder.add({
        name: "detach",
        header: "-- yomu:no-transaction",
        statements: ['ALTER TABLE "events" DETACH PARTITION "events_2026" CONCURRENTLY'],
      });
      const plan = await planLocks({ databaseUrl: own.url, dir: folder.dir });
      expect(plan.migrations.at(-1)?.statements[0]).toMatchObject({
        traced: false,
        locks: [
          { relation: "public.events", mode: "ShareUpdateExclusiveLock" },
          { relation: "public.events_2026", mode: "AccessExclusiveLock" },
        ],
      });
    } finally {
      await own.drop();
    }
  });

  it("reports a statement that fails on the copy, as it would fail on the database", async () => {
    const [s] = await planOf(pending(['ALTER TABLE "bookmarks" ADD COLUMN "required" text NOT NULL']));
    expect(s?.error?.sqlstate).toBe("23502");
  });

  it("seeds the types and keys drizzle-kit generates: enums, domains, uuid, jsonb, arrays, numeric(p,s), composite and self references", async () => {
    const folder = new MigrationsFolder([
      {
        name: "types",
        statements: [
          "CREATE TYPE \"mood\" AS ENUM ('ok', 'meh')",
          'CREATE DOMAIN "positive" AS integer CHECK (VALUE > 0)',
          'CREATE TABLE "owners" ("org" integer NOT NULL, "n" integer NOT NULL, PRIMARY KEY ("org", "n"))',
          'CREATE TABLE "things" ("id" uuid PRIMARY KEY, "mood" "mood" NOT NULL, "size" "positive" NOT NULL, "doc" jsonb NOT NULL, "tags" text[] NOT NULL, "price" numeric(4, 2) NOT NULL, "code" varchar(3) NOT NULL, "at" timestamptz NOT NULL, "day" date NOT NULL, "ip" inet NOT NULL, "ok" boolean NOT NULL, "blob" bytea NOT NULL, "parent" uuid REFERENCES "things" ("id"), "org" integer NOT NULL, "n" integer NOT NULL, FOREIGN KEY ("org", "n") REFERENCES "owners" ("org", "n"))',
          'CREATE UNIQUE INDEX ON "things" ("code")',
        ],
      },
    ]);
    folders.push(folder);
    const target = await createTestDatabase("plan_types");
    try {
      expect((await runCli([], { DATABASE_URL: target.url, MIGRATIONS_DIR: folder.dir })).code).toBe(0);
      // A new scale rewrites every row; more precision alone would not (PostgreSQL 9.2+), and plan would say so.
      folder.add({ name: "later", statements: ['ALTER TABLE "things" ALTER COLUMN "price" SET DATA TYPE numeric(6, 3)'] });
      const plan = await planLocks({ databaseUrl: target.url, dir: folder.dir, rows: 300 });
      // 300 rows overflow varchar(3)'s unique values ('r1'..'r99' fit, 'r100' is cut to 'r10').
      expect(plan.copy.notSeeded).toEqual([{ table: "public.things", reason: expect.stringContaining("duplicate key") }]);
      const small = await planLocks({ databaseUrl: target.url, dir: folder.dir, rows: 90 });
      expect(small.copy.notSeeded).toEqual([]);
      expect(small.copy.seeded.sort()).toEqual(["public.owners", "public.things"]);
      expect(small.migrations[0]?.statements[0]).toMatchObject({
        rewrites: ["public.things"],
        locks: [{ relation: "public.things", rows: 90 }],
      });
    } finally {
      await target.drop();
    }
  });

  it("seeds every table it can and names the ones it cannot, with why", async () => {
    const folder = new MigrationsFolder([
      base,
      {
        name: "awkward",
        statements: ['CREATE TABLE "points" ("p" point NOT NULL)', 'CREATE TABLE "checked" ("n" integer NOT NULL CHECK ("n" < 0))'],
      },
    ]);
    folders.push(folder);
    const target = await createTestDatabase("plan_seed");
    try {
      expect((await runCli([], { DATABASE_URL: target.url, MIGRATIONS_DIR: folder.dir })).code).toBe(0);
      folder.add({ name: "later", statements: ['ALTER TABLE "bookmarks" ADD COLUMN "x" int'] });
      const plan = await planLocks({ databaseUrl: target.url, dir: folder.dir, rows: 50 });
      expect(plan.copy.seeded.sort()).toEqual(["public.bookmarks", "public.users"]);
      expect(plan.copy.notSeeded.map((s) => s.table).sort()).toEqual(["public.checked", "public.points"]);
      expect(plan.copy.notSeeded.find((s) => s.table === "public.points")?.reason).toContain("point");
      expect(plan.copy.notSeeded.find((s) => s.table === "public.checked")?.reason).toContain("check constraint");
    } finally {
      await target.drop();
    }
  });
});

describe("yomu-migrate plan", () => {
  it("--json prints the contract's shape", async () => {
    const folder = pending(['ALTER TABLE "bookmarks" ADD COLUMN "token" uuid DEFAULT gen_random_uuid()']);
    const run = await runCli(["plan", "--json", "--rows", "10"], { DATABASE_URL: db.url, MIGRATIONS_DIR: folder.dir });
    expect(run.code).toBe(0);
    const lines = run.stdout.trim().split("\n");
    expect(lines).toHaveLength(1);
    const json = JSON.parse(lines[0] as string);
    expect(json.migrations).toEqual([
      {
        tag: folder.tags[1],
        file: expect.any(String),
        transactional: true,
        statements: [
          expect.objectContaining({
            index: 1,
            sql: 'ALTER TABLE "bookmarks" ADD COLUMN "token" uuid DEFAULT gen_random_uuid()',
            traced: true,
            locks: [{ relation: "public.bookmarks", mode: "AccessExclusiveLock", rows: 10 }],
            rewrites: ["public.bookmarks"],
            durationMs: expect.any(Number),
          }),
        ],
      },
    ]);
  });

  it("exits 6 when a statement holds ACCESS EXCLUSIVE on a table over --fail-on-access-exclusive-rows, and 0 under it", async () => {
    const folder = pending(['ALTER TABLE "bookmarks" ALTER COLUMN "visits" SET DATA TYPE bigint']);
    const env = { DATABASE_URL: db.url, MIGRATIONS_DIR: folder.dir };
    const over = await runCli(["plan", "--rows", "100", "--fail-on-access-exclusive-rows", "50"], env);
    expect(over.code).toBe(6);
    expect(over.events.find((e) => e.event === "migration.plan.gate")?.message).toContain("public.bookmarks (100 rows, over 50)");
    expect(over.otherLines).toEqual([]);
    const under = await runCli(["plan", "--rows", "10", "--fail-on-access-exclusive-rows", "50"], env);
    expect(under.code).toBe(0);
  });

  it("writes Markdown for a pull request with --format markdown", async () => {
    const folder = pending(['CREATE INDEX "bookmarks_url_idx" ON "bookmarks" ("url")']);
    const run = await runCli(["plan", "--format", "markdown"], { DATABASE_URL: db.url, MIGRATIONS_DIR: folder.dir });
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`#### \`${folder.tags[1]}\``);
    expect(run.stdout).toContain(
      '| 1 | `CREATE INDEX "bookmarks_url_idx" ON "bookmarks" ("url")` | ShareLock public.bookmarks (0 rows) | **writes** | - |',
    );
  });

  it("refuses --json with --format markdown (exit 2)", async () => {
    const run = await runCli(["plan", "--json", "--format", "markdown"], { DATABASE_URL: db.url });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("--json conflicts with --format markdown");
  });
});
