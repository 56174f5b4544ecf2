import { appendFileSync, writeFileSync } from "node:fs";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../../test/support/database.js";
import { drizzleRows, eventsNamed, only, runCli, tableExists, takeMigrationLock, withClient } from "./support/cli.js";
import { MigrationsFolder } from "./support/migrations.js";

let db: TestDatabase;
let folder: MigrationsFolder;
beforeEach(async () => {
  db = await createTestDatabase("refuse");
  folder = new MigrationsFolder([
    { name: "users", statements: ["CREATE TABLE users (id serial PRIMARY KEY);"] },
    { name: "posts", statements: ["CREATE TABLE posts (id serial PRIMARY KEY);"] },
  ]);
});
afterEach(async () => {
  await db.drop();
  folder.remove();
});

const env = () => ({ DATABASE_URL: db.url, MIGRATIONS_DIR: folder.dir });
const cli = (...args: string[]) => runCli(args, env());
const recorded = async () => (await drizzleRows(db.url)).map((r) => Number(r.created_at));

describe("an applied file that changed", () => {
  it("is refused with exit 4 naming the file, and nothing pending is applied", async () => {
    expect((await cli("up")).code).toBe(0);
    const users = folder.byName("users");
    appendFileSync(users.file, "ALTER TABLE users ADD COLUMN name text;\n");
    folder.add({ name: "comments", statements: ["CREATE TABLE comments (id integer);"] });

    const run = await cli("up");
    expect(run.code).toBe(4);
    const failed = only(run, "migration.failed");
    expect(failed).toMatchObject({ code: "CHECKSUM_MISMATCH", tag: users.tag });
    expect(failed.message).toContain(`${users.tag}.sql`);
    expect(await tableExists(db.url, "comments")).toBe(false);
    expect(await recorded()).toEqual(folder.migrations.slice(0, 2).map((m) => m.when));

    // Restoring the file from git is the way out.
    writeFileSync(users.file, users.text);
    expect((await cli("up")).code).toBe(0);
    expect(await tableExists(db.url, "comments")).toBe(true);
  });
});

describe("a pending migration older than the newest applied one", () => {
  async function mergeOlderBranch() {
    expect((await cli("up")).code).toBe(0);
    const [users, posts] = folder.migrations;
    // A branch cut before "posts" was generated and merged after it was applied.
    return folder.add(
      { name: "likes", statements: ["CREATE TABLE likes (id integer);"], when: ((users?.when ?? 0) + (posts?.when ?? 0)) / 2 },
      1,
    );
  }

  it("is refused with exit 4 naming it", async () => {
    const likes = await mergeOlderBranch();
    const run = await cli("up");
    expect(run.code).toBe(4);
    const failed = only(run, "migration.failed");
    expect(failed).toMatchObject({ code: "OUT_OF_ORDER", tag: likes.tag });
    expect(failed.message).toContain(`${likes.tag}.sql`);
    expect(await tableExists(db.url, "likes")).toBe(false);
  });

  it("is applied with --allow-out-of-order", async () => {
    const likes = await mergeOlderBranch();
    const run = await cli("up", "--allow-out-of-order");
    expect(run.code, run.stdout).toBe(0);
    expect(only(run, "migration.run.finished")).toMatchObject({ status: "applied", applied: [likes.tag] });
    expect(await tableExists(db.url, "likes")).toBe(true);
    expect((await recorded()).sort()).toEqual(folder.migrations.map((m) => m.when).sort());
    // Applied now, it is no longer a problem for anyone.
    const again = await cli("up");
    expect(again.code).toBe(0);
    expect(only(again, "migration.run.finished").status).toBe("noop");
  });
});

describe("the migration lock held by another session", () => {
  it("makes the runner give up after --lock-wait-timeout with exit 3, saying who holds it", async () => {
    await withClient(db.url, async (holder) => {
      await holder.query("SET application_name = 'hand-run-backfill'");
      await takeMigrationLock(holder);
      const run = await cli("up", "--lock-wait-timeout", "1s");
      expect(run.code).toBe(3);
      const waiting = eventsNamed(run, "migration.lock.waiting");
      expect(waiting.length).toBeGreaterThanOrEqual(1);
      expect(waiting[0]).toMatchObject({
        pid: (holder as unknown as { processID: number }).processID,
        applicationName: "hand-run-backfill",
      });
      expect(typeof waiting[0]?.since).toBe("string");
      expect(only(run, "migration.failed")).toMatchObject({ code: "LOCK_TIMEOUT" });
      expect(only(run, "migration.run.finished").status).toBe("failed");
    });
    expect(await recorded()).toEqual([]);
  });
});
