import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../../test/support/database.js";
import { runMigrations } from "../src/runner.js";
import { createShadowDatabase } from "../src/shadow.js";
import { withClient } from "./support/cli.js";
import { MigrationsFolder } from "./support/migrations.js";

let db: TestDatabase;
let folder: MigrationsFolder;
beforeEach(async () => {
  db = await createTestDatabase("shadow");
  folder = new MigrationsFolder([
    { name: "accounts", statements: ["CREATE TABLE accounts (id serial PRIMARY KEY);"] },
    { name: "profiles", statements: ["CREATE TABLE profiles (id integer);"] },
  ]);
});
afterEach(async () => {
  await db.drop();
  folder.remove();
});

async function tables(url: string): Promise<string[]> {
  return withClient(url, async (c) =>
    (
      await c.query<{ t: string }>(
        "SELECT relname AS t FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' ORDER BY 1",
      )
    ).rows.map((r) => r.t),
  );
}

describe("the shadow database", () => {
  it("is created beside the live one, takes only the migrations `include` accepts, and is gone after drop()", async () => {
    const shadow = await createShadowDatabase({ databaseUrl: db.url, purpose: "test" });
    expect(shadow.created).toBe(true);
    const first = folder.migrations[0]?.tag;
    const result = await runMigrations({ databaseUrl: shadow.url, dir: folder.dir, include: (m) => m.tag === first });
    expect(result.error).toBeUndefined();
    expect(await tables(shadow.url)).toEqual(["accounts"]);
    expect(await tables(db.url)).toEqual([]);
    const name = new URL(shadow.url).pathname.slice(1);
    await shadow.drop();
    const left = await db.query("SELECT 1 FROM pg_database WHERE datname = $1", [name]);
    expect(left.rowCount).toBe(0);
  });

  it("refuses a given shadow database that already holds tables, and empties one it used", async () => {
    const given = await createTestDatabase("given");
    try {
      await given.query("CREATE TABLE leftover (id integer)");
      await expect(createShadowDatabase({ databaseUrl: db.url, shadowDatabaseUrl: given.url })).rejects.toMatchObject({
        code: "SHADOW_UNAVAILABLE",
      });
      await given.query("DROP TABLE leftover");
      const shadow = await createShadowDatabase({ databaseUrl: db.url, shadowDatabaseUrl: given.url });
      expect(shadow.created).toBe(false);
      await runMigrations({ databaseUrl: shadow.url, dir: folder.dir });
      expect(await tables(given.url)).toEqual(["accounts", "profiles"]);
      await shadow.drop();
      expect(await tables(given.url)).toEqual([]);
      const schemas = await given.query("SELECT nspname FROM pg_namespace WHERE nspname = 'drizzle'");
      expect(schemas.rowCount).toBe(0);
    } finally {
      await given.drop();
    }
  });
});
