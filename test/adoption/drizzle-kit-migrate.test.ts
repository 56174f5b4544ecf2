import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../support/database.js";
import { duplicates, loadLegacySchema, migrationsDir, readCatalog, root, yomuMigrate } from "./support.js";

// specs/114-drizzle-kit-k8s-migration/contracts/migrator-cli.md:
// `drizzle-kit migrate` and yomu-migrate take turns on one database. The baseline is
// plain SQL in drizzle-kit's own file format, so drizzle-kit adopts an init.sql database just as
// yomu-migrate does, and yomu-migrate then sees it as current.

describe("drizzle-kit migrate on a database init.sql created", () => {
  let byDrizzleKit: TestDatabase;
  let byYomu: TestDatabase;

  beforeAll(async () => {
    [byDrizzleKit, byYomu] = await Promise.all([createTestDatabase("adopt_dk"), createTestDatabase("adopt_yomu")]);
    for (const db of [byDrizzleKit, byYomu]) {
      await loadLegacySchema(db);
      await db.query("INSERT INTO users (email, name) VALUES ('ada@example.com', 'Ada')");
    }
  });
  afterAll(async () => {
    await byDrizzleKit?.drop();
    await byYomu?.drop();
  });

  it("applies the baseline, keeps the rows, and leaves what yomu-migrate would leave", async () => {
    const run = spawnSync(join(root, "node_modules/.bin/drizzle-kit"), ["migrate", "--config", "drizzle.config.ts"], {
      cwd: root,
      encoding: "utf8",
      env: { ...process.env, DATABASE_URL: byDrizzleKit.url },
    });
    expect(run.stderr).not.toMatch(/error/i);
    expect(run.status).toBe(0);
    expect((await byDrizzleKit.query("SELECT email FROM users")).rows).toEqual([{ email: "ada@example.com" }]);
    expect(await duplicates(byDrizzleKit)).toEqual([]);

    expect((await yomuMigrate(["up", "--dir", migrationsDir], { DATABASE_URL: byYomu.url })).code).toBe(0);
    expect(await readCatalog(byDrizzleKit)).toEqual(await readCatalog(byYomu));
  });

  it("is current for yomu-migrate afterwards", async () => {
    const status = await yomuMigrate(["status", "--require-current", "--dir", migrationsDir], { DATABASE_URL: byDrizzleKit.url });
    expect(status.code).toBe(0);
    const up = await yomuMigrate(["up", "--dir", migrationsDir], { DATABASE_URL: byDrizzleKit.url });
    expect(up.events.find((e) => e.event === "migration.run.finished")).toMatchObject({ status: "noop" });
  });
});
