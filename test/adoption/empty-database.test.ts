import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { readMigrations } from "@yomu/migrator";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { STATEMENT_BREAKPOINT } from "../../packages/migrator/src/journal.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";
import { finished, migrationsDir, readCatalog, root, withClient, yomuMigrate } from "./support.js";

// The baseline must not cost a fresh database anything: it gets exactly the schema drizzle-kit
// would create from schema.ts, and running the migration again is a no-op.

/** What drizzle-kit itself creates from apps/api/src/shared/db/schema.ts, straight from the schema. */
function drizzleKitExport(): string {
  const run = spawnSync(join(root, "node_modules/.bin/drizzle-kit"), ["export", "--config", "drizzle.config.ts"], {
    cwd: root,
    encoding: "utf8",
  });
  if (run.status !== 0) throw new Error(`drizzle-kit export failed: ${run.stderr}`);
  return run.stdout;
}

describe("the baseline on an empty database", () => {
  let baseline: TestDatabase;
  let reference: TestDatabase;

  beforeAll(async () => {
    [baseline, reference] = await Promise.all([createTestDatabase("baseline_empty"), createTestDatabase("drizzle_ref")]);
    await reference.query(drizzleKitExport());
  });
  afterAll(async () => {
    await baseline?.drop();
    await reference?.drop();
  });

  it("creates exactly the tables, columns, keys and indexes drizzle-kit creates", async () => {
    const run = await yomuMigrate(["up", "--dir", migrationsDir], { DATABASE_URL: baseline.url });
    expect(run.code).toBe(0);
    expect(finished(run)).toMatchObject({ status: "applied", applied: [readMigrations(migrationsDir)[0]?.tag] });
    const expected = await readCatalog(reference);
    expect(expected.indexes.length).toBeGreaterThan(5);
    expect(await readCatalog(baseline)).toEqual(expected);
  });

  it("passes verify against drizzle-kit's snapshot", async () => {
    const run = await yomuMigrate(["verify", "--dir", migrationsDir], { DATABASE_URL: baseline.url });
    expect(run.events.filter((e) => e.event === "migration.verify.problem")).toEqual([]);
    expect(run.code).toBe(0);
  });

  it("is a no-op the second time, through the runner and by hand", async () => {
    const before = await readCatalog(baseline);
    const again = await yomuMigrate(["up", "--dir", migrationsDir], { DATABASE_URL: baseline.url });
    expect(finished(again)).toMatchObject({ status: "noop", applied: [] });
    const [initial] = readMigrations(migrationsDir);
    const sql = readFileSync(join(migrationsDir, `${initial?.tag}.sql`), "utf8");
    const statements = sql.split(STATEMENT_BREAKPOINT);
    expect(statements.length).toBeGreaterThan(10);
    await withClient(baseline.url, async (client) => {
      for (const statement of statements) await client.query(statement);
    });
    expect(await readCatalog(baseline)).toEqual(before);
  });
});
