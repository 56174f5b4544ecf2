import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../../test/support/database.js";
import { only, runCli, startCli, withClient } from "./support/cli.js";
import { MigrationsFolder } from "./support/migrations.js";

// Regression (issue 15, finding 5): during a 25 s statement nothing was printed between
// "1 pending migration(s)" and "applied … in 25004ms".

let db: TestDatabase;
const folder = new MigrationsFolder([
  { name: "create_items", statements: ["CREATE TABLE items (id int);"] },
  { name: "add_note", statements: ["SELECT 1;", "ALTER TABLE items ADD COLUMN note text;"] },
]);
beforeAll(async () => {
  db = await createTestDatabase("progress");
  const first = new MigrationsFolder();
  first.add({ name: "create_items", statements: ["CREATE TABLE items (id int);"], when: folder.byName("create_items").when });
  expect((await runCli(["up"], { DATABASE_URL: db.url, MIGRATIONS_DIR: first.dir })).code).toBe(0);
  first.remove();
});
afterAll(async () => {
  await db.drop();
  folder.remove();
});

describe("a statement blocked by another session", () => {
  it("reports migration.started, then migration.progress naming the blocker's pid and since when", async () => {
    await withClient(db.url, async (blocker) => {
      await blocker.query("BEGIN");
      await blocker.query("SELECT count(*) FROM items");
      const { rows } = await blocker.query<{ pid: number }>("SELECT pg_backend_pid() AS pid");
      const blockerPid = rows[0]?.pid as number;
      // lock_timeout high enough that the ALTER waits instead of stepping back to retry.
      const runner = startCli(["up", "--lock-timeout", "60s", "--progress-interval", "300ms"], {
        DATABASE_URL: db.url,
        MIGRATIONS_DIR: folder.dir,
      });
      const started = await runner.waitFor("migration.started");
      expect(started).toMatchObject({ tag: folder.tags[1], statements: 2, severity: "INFO" });
      const progress = await runner.waitFor("migration.progress", (e) => (e.blockedBy as number[]).includes(blockerPid));
      expect(progress).toMatchObject({ tag: folder.tags[1], statement: 2, waitEvent: "Lock:relation", blockedBy: [blockerPid] });
      expect(progress.elapsedMs as number).toBeGreaterThan(0);
      const [who] = progress.blockers as Array<{ pid: number; queryStart: string | null; state: string }>;
      expect(who).toMatchObject({ pid: blockerPid, state: "idle in transaction" });
      expect(Number.isNaN(Date.parse(who?.queryStart ?? ""))).toBe(false);
      expect(progress.message).toContain(`blocked by pid ${blockerPid}`);
      await blocker.query("ROLLBACK");
      const run = await runner.done;
      expect(run.code, run.stdout).toBe(0);
      expect(only(run, "migration.run.finished")).toMatchObject({ status: "applied", applied: [folder.tags[1]] });
    });
  });

  it("shows both in the pretty output", async () => {
    const other = await createTestDatabase("progress_pretty");
    const sleepy = new MigrationsFolder([{ name: "nap", statements: ["SELECT pg_sleep(1.5);"] }]);
    try {
      const run = await runCli(["up", "--log-format", "pretty", "--progress-interval", "300ms"], {
        DATABASE_URL: other.url,
        MIGRATIONS_DIR: sleepy.dir,
      });
      expect(run.code, run.stdout).toBe(0);
      const lines = run.stdout.split("\n");
      expect(lines).toContainEqual(expect.stringMatching(new RegExp(`• applying ${sleepy.tags[0]} \\(1 statement\\(s\\)\\)$`)));
      expect(lines).toContainEqual(
        expect.stringMatching(new RegExp(`• ${sleepy.tags[0]}: statement 1 still running after \\d+s, waiting on Timeout:PgSleep`)),
      );
    } finally {
      sleepy.remove();
      await other.drop();
    }
  });
});
