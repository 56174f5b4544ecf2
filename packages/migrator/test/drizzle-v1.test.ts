import { cpSync } from "node:fs";
import { drizzle as drizzle045 } from "drizzle-orm/node-postgres";
import { migrate as migrate045 } from "drizzle-orm/node-postgres/migrator";
import { drizzle as drizzle1 } from "drizzle-orm-v1/node-postgres";
import { migrate as migrate1 } from "drizzle-orm-v1/node-postgres/migrator";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../../test/support/database.js";
import { only, runCli, withClient } from "./support/cli.js";
import { MigrationFolders, MigrationsFolder } from "./support/migrations.js";

// drizzle-orm 1.0 (a release candidate, installed as drizzle-orm-v1) and yomu-migrate must be
// able to take turns on one database in drizzle-kit 1.0's layout, as 0.45 and yomu-migrate do on
// the journal layout (drizzle-interop.test.ts).

const drizzle1Migrate = (url: string, dir: string) =>
  withClient(url, (client) => migrate1(drizzle1({ client }), { migrationsFolder: dir }));
const drizzle045Migrate = (url: string, dir: string) =>
  withClient(url, (client) => migrate045(drizzle045(client), { migrationsFolder: dir }));

/** drizzle's rows as both versions keep them, applied_at reduced to whether it is set. */
function rows(url: string) {
  return withClient(url, async (client) => {
    const { rows: cols } = await client.query<{ column_name: string }>(
      "SELECT column_name FROM information_schema.columns WHERE table_schema = 'drizzle' AND table_name = '__drizzle_migrations'",
    );
    const v1 = cols.some((c) => c.column_name === "name");
    const { rows: list } = await client.query(
      `SELECT hash, created_at::text AS created_at${v1 ? ", name, applied_at IS NOT NULL AS applied_at_set" : ""} FROM drizzle.__drizzle_migrations ORDER BY id`,
    );
    return list;
  });
}

/** The table's columns with their types and defaults, as drizzle created or upgraded it. */
function tableShape(url: string) {
  return withClient(url, async (client) => {
    const { rows: list } = await client.query(
      `SELECT column_name, data_type, column_default, is_nullable FROM information_schema.columns
        WHERE table_schema = 'drizzle' AND table_name = '__drizzle_migrations' ORDER BY ordinal_position`,
    );
    return list;
  });
}

const specs = [
  { name: "authors", statements: ["CREATE TABLE authors (id serial PRIMARY KEY, name text NOT NULL);"] },
  {
    name: "books",
    statements: [
      "CREATE TABLE books (id serial PRIMARY KEY, author_id integer REFERENCES authors (id));",
      "CREATE INDEX books_author_idx ON books (author_id);",
    ],
  },
];

/** The same migrations in 0.x's journal layout, `when` carrying milliseconds the folder names drop. */
const asJournal = (ms: number) =>
  new MigrationsFolder(folders.migrations.map((m, i) => ({ ...(specs[i] as (typeof specs)[number]), when: m.when + ms * (i + 1) })));

let db: TestDatabase;
let other: TestDatabase;
let folders: MigrationFolders;
beforeEach(async () => {
  db = await createTestDatabase("v1");
  other = await createTestDatabase("v1_drizzle");
  folders = new MigrationFolders(specs);
});
afterEach(async () => {
  await db.drop();
  await other.drop();
  folders.remove();
});

const yomu = (url: string, dir: string, ...args: string[]) => runCli(args, { DATABASE_URL: url, MIGRATIONS_DIR: dir });

describe("drizzle-kit 1.0's layout, taking turns with drizzle-orm 1.0", () => {
  it("records the rows drizzle-orm 1.0 records (hash, created_at, name, applied_at) in a table of the same shape", async () => {
    const up = await yomu(db.url, folders.dir, "up");
    expect(up.code, up.stdout).toBe(0);
    expect(only(up, "migration.run.finished")).toMatchObject({ status: "applied", applied: folders.tags, schemaVersion: folders.tags[1] });
    await drizzle1Migrate(other.url, folders.dir);

    expect(await rows(db.url)).toEqual(await rows(other.url));
    expect((await rows(db.url)).map((r) => [r.name, r.applied_at_set])).toEqual(folders.tags.map((t) => [t, true]));
    expect(await tableShape(db.url)).toEqual(await tableShape(other.url));
  });

  it("each finds nothing to do on a database the other migrated", async () => {
    expect((await yomu(db.url, folders.dir, "up")).code).toBe(0);
    const ours = await rows(db.url);
    // Were drizzle to apply anything again, CREATE TABLE would fail on the existing tables.
    await drizzle1Migrate(db.url, folders.dir);
    expect(await rows(db.url)).toEqual(ours);

    await drizzle1Migrate(other.url, folders.dir);
    const theirs = await rows(other.url);
    expect((await yomu(other.url, folders.dir, "status", "--require-current")).code).toBe(0);
    const up = await yomu(other.url, folders.dir, "up");
    expect(only(up, "migration.run.finished")).toMatchObject({ status: "noop", applied: [] });
    expect(await rows(other.url)).toEqual(theirs);
  });

  it("takes a migration as pending when its name is not recorded, even older than the newest applied, as drizzle-orm 1.0 does", async () => {
    expect((await yomu(db.url, folders.dir, "up")).code).toBe(0);
    await drizzle1Migrate(other.url, folders.dir);
    // A branch merged late: its folder's timestamp is older than the newest applied one.
    const late = folders.add({
      name: "reviews",
      when: (folders.migrations[0]?.when ?? 0) + 1_000,
      statements: ["CREATE TABLE reviews (id serial PRIMARY KEY);"],
    });

    const status = await yomu(db.url, folders.dir, "status", "--require-current");
    expect(status.code).toBe(5);
    const up = await yomu(db.url, folders.dir, "up");
    expect(up.code, up.stdout).toBe(0);
    expect(only(up, "migration.run.finished")).toMatchObject({ status: "applied", applied: [late.tag] });
    await drizzle1Migrate(other.url, folders.dir);
    expect(await rows(db.url)).toEqual(await rows(other.url));

    // And the turn back: drizzle applies the next one, yomu-migrate then has nothing to do.
    folders.add({ name: "ratings", statements: ["ALTER TABLE reviews ADD COLUMN rating smallint;"] });
    await drizzle1Migrate(db.url, folders.dir);
    const again = await yomu(db.url, folders.dir, "up");
    expect(only(again, "migration.run.finished")).toMatchObject({ status: "noop" });
  });

  it("upgrades drizzle-orm 0.x's table in place, as drizzle-orm 1.0 does, once the folder moves to the new layout", async () => {
    // The same two migrations, first in 0.x's journal layout, applied by drizzle-orm 0.45 to both databases.
    const journal = asJournal(123);
    try {
      expect(journal.tags).toEqual(folders.tags);
      await drizzle045Migrate(db.url, journal.dir);
      await drizzle045Migrate(other.url, journal.dir);
      expect(await rows(db.url)).toHaveLength(2);

      // `drizzle-kit up` names each folder after the journal's `when`, to the second; one new migration on top.
      folders.add({ name: "reviews", statements: ["CREATE TABLE reviews (id serial PRIMARY KEY);"] });
      const up = await yomu(db.url, folders.dir, "up");
      expect(up.code, up.stdout).toBe(0);
      expect(only(up, "migration.run.finished")).toMatchObject({ status: "applied", applied: [folders.tags[2]] });
      await drizzle1Migrate(other.url, folders.dir);

      const ours = await rows(db.url);
      expect(ours).toEqual(await rows(other.url));
      // The rows 0.45 wrote get their folder's name and no applied_at (when is not known).
      expect(ours.map((r) => [r.name, r.applied_at_set])).toEqual([
        [folders.tags[0], false],
        [folders.tags[1], false],
        [folders.tags[2], true],
      ]);
      expect(await tableShape(db.url)).toEqual(await tableShape(other.url));
      await drizzle1Migrate(db.url, folders.dir);
      expect(await rows(db.url)).toEqual(ours);
    } finally {
      journal.remove();
    }
  });

  it("reads a 0.x table not yet upgraded as drizzle-orm 1.0 will, without changing it (status)", async () => {
    const journal = asJournal(456);
    try {
      await drizzle045Migrate(db.url, journal.dir);
      const before = await tableShape(db.url);
      const status = await yomu(db.url, folders.dir, "status", "--require-current");
      expect(status.code, status.stdout).toBe(0);
      expect(await tableShape(db.url)).toEqual(before);
    } finally {
      journal.remove();
    }
  });
});

describe("which layout", () => {
  it("refuses a folder holding both layouts, naming both, with exit 2 and nothing applied", async () => {
    const journal = new MigrationsFolder([{ name: "a", statements: ["CREATE TABLE a (id int);"] }]);
    try {
      cpSync(folders.dir, journal.dir, { recursive: true });
      const up = await yomu(db.url, journal.dir, "up");
      expect(up.code).toBe(2);
      expect(up.stdout).toContain("holds both drizzle-kit 0.x's meta/_journal.json and drizzle-kit 1.0 migration folders");
      expect(up.stdout).toContain("drizzle-kit up");
      // drizzle-orm 1.0 refuses it too.
      await expect(drizzle1Migrate(other.url, journal.dir)).rejects.toThrow(/drizzle-kit up/);
      expect(await rows(db.url).catch(() => [])).toEqual([]);
    } finally {
      journal.remove();
    }
  });

  it("names generic drizzle-kit commands, never this repository's scripts, when the folder holds no migrations", async () => {
    const empty = new MigrationFolders();
    try {
      const up = await yomu(db.url, empty.dir, "status");
      expect(up.code).toBe(2);
      expect(up.stdout).toContain("drizzle-kit generate");
      expect(up.stdout).not.toContain("pnpm --filter");
    } finally {
      empty.remove();
    }
  });
});
