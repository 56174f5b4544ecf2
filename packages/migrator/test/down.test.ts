import { existsSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Catalog, readCatalog } from "../../../test/support/catalog.js";
import { createTestDatabase, type TestDatabase } from "../../../test/support/database.js";
import { drizzleRows, only, runCli } from "./support/cli.js";
import { MigrationFolders, MigrationsFolder } from "./support/migrations.js";

describe("down migrations", () => {
  let db: TestDatabase;
  const folder = new MigrationsFolder([
    { name: "create_lists", statements: ["CREATE TABLE lists (id serial PRIMARY KEY, name text NOT NULL)"] },
    {
      name: "create_items",
      statements: [
        "CREATE TABLE items (id serial PRIMARY KEY, list_id int NOT NULL REFERENCES lists(id))",
        "CREATE INDEX items_list_id_idx ON items (list_id)",
      ],
    },
    { name: "add_done", statements: ["ALTER TABLE items ADD COLUMN done boolean DEFAULT false NOT NULL"] },
  ]);
  const env = () => ({ DATABASE_URL: db.url, MIGRATIONS_DIR: folder.dir, POD_NAME: "ops-laptop" });
  const writeDown = (name: string, sql: string) => writeFileSync(folder.byName(name).file.replace(/\.sql$/, ".down.sql"), sql);
  let afterFirst: Catalog;
  let afterAll3: Catalog;

  beforeAll(async () => {
    db = await createTestDatabase("down");
    writeDown("create_items", "DROP TABLE items;\n");
    writeDown("add_done", "ALTER TABLE items DROP COLUMN done;\n");
    afterFirst = await catalogAfter(
      new MigrationsFolder([{ name: "create_lists", statements: ["CREATE TABLE lists (id serial PRIMARY KEY, name text NOT NULL)"] }]),
    );
  });
  afterAll(async () => {
    await db.drop();
    folder.remove();
  });

  it("refuses, before touching anything, when a down file is missing", async () => {
    expect((await runCli([], env())).code).toBe(0);
    afterAll3 = await readCatalog(db);
    const run = await runCli(["down", "--steps", "3"], env());
    expect(run.code).toBe(1);
    expect(only(run, "migration.failed").message).toMatch(/no down migration for .*_create_lists\.down\.sql; nothing was rolled back/);
    expect(await readCatalog(db)).toEqual(afterAll3);
    expect(await drizzleRows(db.url)).toHaveLength(3);
  });

  it("rolls back the newest migrations, newest first, and forgets them", async () => {
    const run = await runCli(["down", "--to", folder.tags[0] as string], env());
    expect(run.code).toBe(0);
    expect(eventsOf(run, "migration.rolled_back")).toEqual([folder.tags[2], folder.tags[1]]);
    expect(only(run, "migration.run.finished")).toMatchObject({ status: "rolled-back", schemaVersion: folder.tags[0] });
    expect(await readCatalog(db)).toEqual(afterFirst);
    expect(await drizzleRows(db.url)).toHaveLength(1);
    const history = await db.query("SELECT status, applied, host FROM drizzle.migration_runs WHERE status = 'down'");
    expect(history.rows).toEqual([{ status: "down", applied: [folder.tags[2], folder.tags[1]], host: "ops-laptop" }]);
  });

  it("up after down leaves the schema the catalog shows after the first up", async () => {
    expect((await runCli([], env())).code).toBe(0);
    expect(await readCatalog(db)).toEqual(afterAll3);
  });

  it("rolls back nothing when a down file fails halfway", async () => {
    writeDown("add_done", "ALTER TABLE items DROP COLUMN done;\n--> statement-breakpoint\nALTER TABLE items DROP COLUMN no_such_column;\n");
    const run = await runCli(["down", "--steps", "1"], env());
    expect(run.code).toBe(1);
    expect(only(run, "migration.failed").message).toMatch(/add_done\.down\.sql: statement 2 failed: .*no_such_column/);
    expect(await readCatalog(db)).toEqual(afterAll3);
    expect(await drizzleRows(db.url)).toHaveLength(3);
  });

  it("rejects a missing or doubled target with a usage error, and an unknown tag with exit 1", async () => {
    expect((await runCli(["down"], env())).code).toBe(2);
    expect((await runCli(["down", "--steps", "1", "--to", "x"], env())).code).toBe(2);
    const unknown = await runCli(["down", "--to", "20990101000000_nope"], env());
    expect(unknown.code).toBe(1);
    expect(only(unknown, "migration.failed").message).toContain("--to 20990101000000_nope is not an applied migration");
  });
});

describe("down migrations in drizzle-kit 1.0's layout: down.sql inside the migration's folder", () => {
  let db: TestDatabase;
  const specs = [
    { name: "create_lists", statements: ["CREATE TABLE lists (id serial PRIMARY KEY, name text NOT NULL)"] },
    { name: "create_items", statements: ["CREATE TABLE items (id serial PRIMARY KEY, list_id int NOT NULL REFERENCES lists(id))"] },
    { name: "add_done", statements: ["ALTER TABLE items ADD COLUMN done boolean DEFAULT false NOT NULL"] },
  ];
  const folder = new MigrationFolders(specs);
  const env = () => ({ DATABASE_URL: db.url, MIGRATIONS_DIR: folder.dir });
  const downOf = (i: number) => join(folder.dir, folder.tags[i] as string, "down.sql");
  const names = async () => (await db.query("SELECT name FROM drizzle.__drizzle_migrations ORDER BY id")).rows.map((r) => r.name);
  let afterFirst: Catalog;
  let afterAll3: Catalog;

  beforeAll(async () => {
    db = await createTestDatabase("down_v1");
    afterFirst = await catalogAfter(new MigrationFolders(specs.slice(0, 1)));
  });
  afterAll(async () => {
    await db.drop();
    folder.remove();
  });

  it("names <folder>/down.sql when it is missing, and rolls back nothing", async () => {
    expect((await runCli([], env())).code).toBe(0);
    afterAll3 = await readCatalog(db);
    writeFileSync(downOf(2), "ALTER TABLE items DROP COLUMN done;\n");
    // Written where 0.x keeps it: not read, and down says where it goes.
    const misplaced = join(folder.dir, `${folder.tags[1]}.down.sql`);
    writeFileSync(misplaced, "DROP TABLE items;\n");
    const run = await runCli(["down", "--steps", "2"], env());
    rmSync(misplaced);
    expect(run.code).toBe(1);
    expect(only(run, "migration.journal.warning").message).toContain(`down takes a drizzle-kit 1.0 migration's reverse from ${downOf(1)}`);
    expect(only(run, "migration.failed").message).toContain(
      `no down migration for ${join(folder.dir, folder.tags[1] as string, "down.sql")};`,
    );
    expect(only(run, "migration.failed").hint).toContain("down.sql inside the migration's folder");
    expect(await readCatalog(db)).toEqual(afterAll3);
  });

  it("refuses a down file that is not UTF-8, naming its line, with nothing rolled back (exit 2)", async () => {
    writeFileSync(downOf(1), Buffer.concat([Buffer.from("-- caf"), Buffer.from([0xe9]), Buffer.from("\nDROP TABLE items;\n")]));
    const run = await runCli(["down", "--steps", "2"], env());
    expect(run.code).toBe(2);
    expect(only(run, "migration.failed").message).toContain(`${downOf(1)}:1 is not valid UTF-8 (byte 0xe9)`);
    expect(await readCatalog(db)).toEqual(afterAll3);
    expect(await names()).toEqual(folder.tags);
  });

  it("up → down → up: the down files undo the migrations, drizzle's rows follow, and up applies them again", async () => {
    // A BOM, as a Windows editor saves it, is dropped as up drops it.
    writeFileSync(downOf(1), "\ufeffDROP TABLE items;\n");
    const down = await runCli(["down", "--to", folder.tags[0] as string], env());
    expect(down.code, down.stdout).toBe(0);
    expect(eventsOf(down, "migration.rolled_back")).toEqual([folder.tags[2], folder.tags[1]]);
    expect(await readCatalog(db)).toEqual(afterFirst);
    expect(await names()).toEqual([folder.tags[0]]);
    // drizzle-kit 1.0 reads only migration.sql: the down file is not a migration of its own.
    expect(existsSync(join(folder.dir, `${folder.tags[1]}.down.sql`))).toBe(false);
    const up = await runCli([], env());
    expect(up.code, up.stdout).toBe(0);
    expect(only(up, "migration.run.finished")).toMatchObject({ applied: [folder.tags[1], folder.tags[2]] });
    expect(await readCatalog(db)).toEqual(afterAll3);
    expect(await names()).toEqual(folder.tags);
    expect((await runCli([], env())).events.find((e) => e.event === "migration.run.finished")).toMatchObject({ status: "noop" });
  });
});

/** The catalog `up` of this folder alone builds on a fresh database, for comparison; removes the folder. */
async function catalogAfter(folder: { dir: string; remove(): void }): Promise<Catalog> {
  const other = await createTestDatabase("down_ref");
  try {
    expect((await runCli([], { DATABASE_URL: other.url, MIGRATIONS_DIR: folder.dir })).code).toBe(0);
    return await readCatalog(other);
  } finally {
    await other.drop();
    folder.remove();
  }
}

function eventsOf(run: { events: Array<{ event: string; tag?: unknown }> }, name: string): unknown[] {
  return run.events.filter((e) => e.event === name).map((e) => e.tag);
}
