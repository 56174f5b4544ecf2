import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { drizzle } from "drizzle-orm/node-postgres";
import { migrate } from "drizzle-orm/node-postgres/migrator";
import pg from "pg";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../../test/support/database.js";
import { drizzleRows, only, runCli } from "./support/cli.js";
import { MigrationsFolder } from "./support/migrations.js";

const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));
const configDir = mkdtempSync(join(tmpdir(), "yomu-drizzle-config-"));
afterAll(() => rmSync(configDir, { recursive: true, force: true }));

let db: TestDatabase;
let folder: MigrationsFolder;
beforeEach(async () => {
  db = await createTestDatabase("interop");
  folder = new MigrationsFolder([
    { name: "authors", statements: ["CREATE TABLE authors (id serial PRIMARY KEY, name text NOT NULL);"] },
    {
      name: "books",
      statements: [
        "CREATE TABLE books (id serial PRIMARY KEY, author_id integer REFERENCES authors (id));",
        "CREATE INDEX books_author_idx ON books (author_id);",
      ],
    },
  ]);
});
afterEach(async () => {
  await db.drop();
  folder.remove();
});

async function drizzleOrmMigrate(url: string, dir: string): Promise<void> {
  const client = new pg.Client(url);
  await client.connect();
  try {
    await migrate(drizzle(client), { migrationsFolder: dir });
  } finally {
    await client.end();
  }
}

function drizzleKitMigrate(url: string, dir: string): Promise<{ code: number | null; output: string }> {
  const config = join(configDir, `drizzle-${db.name}.config.mjs`);
  writeFileSync(
    config,
    `export default ${JSON.stringify({ dialect: "postgresql", out: dir, dbCredentials: { url }, migrations: { table: "__drizzle_migrations", schema: "drizzle" } })};\n`,
  );
  return new Promise((resolve, reject) => {
    const child = spawn("pnpm", ["exec", "drizzle-kit", "migrate", "--config", config], {
      cwd: repoRoot,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (chunk) => {
      output += chunk;
    });
    child.stderr.on("data", (chunk) => {
      output += chunk;
    });
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, output }));
  });
}

const yomu = (...args: string[]) => runCli(args, { DATABASE_URL: db.url, MIGRATIONS_DIR: folder.dir });

describe("taking turns with drizzle on one database", () => {
  it("records exactly the rows drizzle-orm's migrate() records for the same files", async () => {
    const other = await createTestDatabase("interop_drizzle");
    try {
      await drizzleOrmMigrate(other.url, folder.dir);
      expect((await yomu("up")).code).toBe(0);
      const ours = await drizzleRows(db.url);
      expect(ours).toHaveLength(2);
      expect(ours).toEqual(await drizzleRows(other.url));
    } finally {
      await other.drop();
    }
  });

  it("a database this runner migrated is up to date for drizzle-orm's migrate() and for drizzle-kit migrate", async () => {
    expect((await yomu("up")).code).toBe(0);
    const before = await drizzleRows(db.url);

    // Were either to apply anything, CREATE TABLE would fail on the existing tables.
    await drizzleOrmMigrate(db.url, folder.dir);
    expect(await drizzleRows(db.url)).toEqual(before);

    const kit = await drizzleKitMigrate(db.url, folder.dir);
    expect(kit.code, kit.output).toBe(0);
    expect(await drizzleRows(db.url)).toEqual(before);
  });

  it("a database drizzle-orm's migrate() migrated is current for status --require-current and a noop for up", async () => {
    await drizzleOrmMigrate(db.url, folder.dir);
    const before = await drizzleRows(db.url);

    const status = await yomu("status", "--require-current");
    expect(status.code, status.stdout).toBe(0);
    const up = await yomu("up");
    expect(up.code).toBe(0);
    expect(only(up, "migration.run.finished")).toMatchObject({ status: "noop", applied: [], schemaVersion: folder.tags[1] });
    expect(await drizzleRows(db.url)).toEqual(before);
  });

  it("drizzle-kit, then this runner, then drizzle-kit again, each applying only what is new", async () => {
    const kit = await drizzleKitMigrate(db.url, folder.dir);
    expect(kit.code, kit.output).toBe(0);
    expect(await drizzleRows(db.url)).toHaveLength(2);

    folder.add({ name: "reviews", statements: ["CREATE TABLE reviews (id serial PRIMARY KEY, book_id integer REFERENCES books (id));"] });
    expect((await yomu("status", "--require-current")).code).toBe(5);
    const up = await yomu("up");
    expect(only(up, "migration.run.finished")).toMatchObject({ status: "applied", applied: [folder.tags[2]] });

    folder.add({ name: "ratings", statements: ["ALTER TABLE reviews ADD COLUMN rating smallint;"] });
    const again = await drizzleKitMigrate(db.url, folder.dir);
    expect(again.code, again.output).toBe(0);
    expect((await drizzleRows(db.url)).map((r) => Number(r.created_at))).toEqual(folder.migrations.map((m) => m.when));
    expect((await yomu("status", "--require-current")).code).toBe(0);
  });
});
