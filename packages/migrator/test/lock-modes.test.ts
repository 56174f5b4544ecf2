// What `plan` says each lock blocks, checked against PostgreSQL itself: one session holds the
// mode, another tries a read and a write under a short lock_timeout.
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../../test/support/database.js";
import { blocksOf, LOCK_MODES, worstBlocks } from "../src/lock-modes.js";

let db: TestDatabase;
let holder: pg.Client;
let other: pg.Client;

beforeAll(async () => {
  db = await createTestDatabase("lock_modes");
  await db.query('CREATE TABLE "t" ("id" integer)');
  holder = new pg.Client(db.url);
  other = new pg.Client(db.url);
  await holder.connect();
  await other.connect();
  await other.query("SET lock_timeout = 100");
});

afterAll(async () => {
  await holder.end();
  await other.end();
  await db.drop();
});

async function waits(sql: string): Promise<boolean> {
  try {
    await other.query(sql);
    return false;
  } catch (error) {
    if ((error as { code?: string }).code === "55P03") return true;
    throw error;
  }
}

it.each(LOCK_MODES.map((mode) => [mode]))("%s blocks what blocksOf says", async (mode) => {
  // LOCK TABLE names the mode in words: AccessExclusiveLock -> ACCESS EXCLUSIVE.
  const words = mode
    .replace(/Lock$/, "")
    .replace(/([a-z])([A-Z])/g, "$1 $2")
    .toUpperCase();
  await holder.query("BEGIN");
  try {
    await holder.query(`LOCK TABLE "t" IN ${words} MODE`);
    const reads = await waits('SELECT * FROM "t"');
    const writes = await waits('INSERT INTO "t" VALUES (1)');
    expect(blocksOf(mode)).toBe(reads && writes ? "reads and writes" : writes ? "writes" : "nothing");
  } finally {
    await holder.query("ROLLBACK");
  }
});

it("a statement holding several modes blocks what the worst of them blocks", () => {
  expect(worstBlocks(["ShareLock", "AccessShareLock"])).toBe("writes");
  expect(worstBlocks([])).toBe("nothing");
});
