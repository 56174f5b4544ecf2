import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../../test/support/database.js";
import { drizzleRows, eventsNamed, only, runCli } from "./support/cli.js";
import { MigrationsFolder } from "./support/migrations.js";

// drizzle-orm issue 3249: a value added to an enum in one pending file and used in a later one
// fails the whole batch with 55P04 "unsafe use of new value", under drizzle as in one transaction.

let db: TestDatabase;
let folder: MigrationsFolder;
beforeEach(async () => {
  db = await createTestDatabase("enum_batches");
  folder = new MigrationsFolder([
    {
      name: "moods",
      statements: [
        "CREATE TYPE \"mood\" AS ENUM ('happy', 'sad');",
        'CREATE TABLE "people" ("id" serial PRIMARY KEY, "mood" "mood" NOT NULL);',
      ],
    },
  ]);
  // The type exists before the run: PostgreSQL lets a run use values added to a type it created.
  expect((await up()).code).toBe(0);
});
afterEach(async () => {
  await db.drop();
  folder.remove();
});

const up = (...args: string[]) => runCli(["up", ...args], { DATABASE_URL: db.url, MIGRATIONS_DIR: folder.dir });
const recorded = async () => (await drizzleRows(db.url)).map((r) => Number(r.created_at));
const labels = async () => (await db.query("SELECT enumlabel FROM pg_enum ORDER BY enumsortorder")).rows.map((r) => r.enumlabel);

const addValue = { name: "add_calm", statements: ["ALTER TYPE \"mood\" ADD VALUE 'calm';"] };
const useValue = {
  name: "use_calm",
  statements: ['ALTER TABLE "people" ALTER COLUMN "mood" SET DEFAULT \'calm\';', 'INSERT INTO "people" DEFAULT VALUES;'],
};

describe("an enum value added and used in one run", () => {
  it("is applied, with one commit after the file that adds it, and the log says so", async () => {
    folder.add({ name: "unrelated", statements: ['CREATE TABLE "pets" ("id" serial PRIMARY KEY);'] });
    const adder = folder.add(addValue);
    const user = folder.add(useValue);
    const run = await up();
    expect(run.code, run.stdout).toBe(0);
    expect(only(run, "migration.enum.split")).toMatchObject({ severity: "NOTICE", tag: user.tag, commitAfter: adder.tag });
    expect(only(run, "migration.enum.split").message).toContain("55P04");
    expect(only(run, "migration.run.finished")).toMatchObject({ status: "applied", applied: folder.tags.slice(1) });
    expect(await labels()).toEqual(["happy", "sad", "calm"]);
    expect((await db.query('SELECT "mood" FROM "people"')).rows).toEqual([{ mood: "calm" }]);
    expect(await recorded()).toEqual(folder.migrations.map((m) => m.when));
    // Numbered as drizzle numbers one straight run, though the first attempt was rolled back.
    const ids = await db.query("SELECT id FROM drizzle.__drizzle_migrations ORDER BY id");
    expect(ids.rows.map((r) => r.id)).toEqual([1, 2, 3, 4]);
    expect(only(await up(), "migration.run.finished").status).toBe("noop");
  });

  it("splits again for a second value added after the first split", async () => {
    const first = folder.add(addValue);
    folder.add(useValue);
    const second = folder.add({ name: "add_angry", statements: ["ALTER TYPE \"mood\" ADD VALUE 'angry';"] });
    folder.add({ name: "use_angry", statements: ['INSERT INTO "people" ("mood") VALUES (\'angry\');'] });
    const run = await up();
    expect(run.code, run.stdout).toBe(0);
    expect(eventsNamed(run, "migration.enum.split").map((e) => e.commitAfter)).toEqual([first.tag, second.tag]);
    expect((await db.query('SELECT "mood" FROM "people" ORDER BY "id"')).rows).toEqual([{ mood: "calm" }, { mood: "angry" }]);
  });

  it("without a use stays one transaction: a later failure takes the new value with it", async () => {
    folder.add(addValue);
    folder.add({ name: "broken", statements: ['CREATE TABLE "pets" ("id" serial PRIMARY KEY);', "SELECT nope;"] });
    const run = await up();
    expect(run.code).toBe(1);
    expect(eventsNamed(run, "migration.enum.split")).toEqual([]);
    expect(only(run, "migration.failed").hint).toContain("the whole run was rolled back and nothing is applied");
    expect(await labels()).toEqual(["happy", "sad"]);
    expect(await recorded()).toEqual([folder.migrations[0]?.when]);
  });

  it("that fails after the split keeps what was committed before it, and says so", async () => {
    const adder = folder.add(addValue);
    const user = folder.add(useValue);
    const broken = folder.add({ name: "broken", statements: ["SELECT nope;"] });
    const run = await up();
    expect(run.code).toBe(1);
    const failed = only(run, "migration.failed");
    expect(failed).toMatchObject({ tag: broken.tag, sqlstate: "42703" });
    expect(failed.hint).toContain(`1 migration(s) committed earlier in this run stay applied (${adder.tag} to ${adder.tag})`);
    expect(failed.hint).toContain(`${user.tag}, ${broken.tag} were rolled back`);
    expect(only(run, "migration.run.finished")).toMatchObject({ status: "failed", applied: [adder.tag] });
    expect(await labels()).toEqual(["happy", "sad", "calm"]);
    expect((await db.query('SELECT count(*)::int AS n FROM "people"')).rows).toEqual([{ n: 0 }]);
    expect(await recorded()).toEqual([folder.migrations[0]?.when, adder.when]);
  });

  it("added and used in the same file fails with 55P04, rolled back, and a hint to move the use", async () => {
    folder.add({ name: "add_and_use", statements: [...addValue.statements, ...useValue.statements] });
    const run = await up();
    expect(run.code).toBe(1);
    expect(only(run, "migration.failed")).toMatchObject({ sqlstate: "55P04" });
    expect(only(run, "migration.failed").hint).toContain("move the use to a later migration");
    expect(await labels()).toEqual(["happy", "sad"]);
  });
});
