import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../../test/support/database.js";
import { eventsNamed, only, runCli, startCli } from "./support/cli.js";
import { MigrationsFolder } from "./support/migrations.js";

async function indexValid(db: TestDatabase, name: string): Promise<boolean | undefined> {
  const { rows } = await db.query<{ valid: boolean }>("SELECT indisvalid AS valid FROM pg_index WHERE indexrelid = to_regclass($1)", [
    name,
  ]);
  return rows[0]?.valid;
}

describe("CREATE INDEX CONCURRENTLY under live writes", () => {
  let db: TestDatabase;
  const folder = new MigrationsFolder([
    { name: "create_events", statements: ["CREATE TABLE events (id serial PRIMARY KEY, kind text NOT NULL)"] },
  ]);
  const env = () => ({ DATABASE_URL: db.url, MIGRATIONS_DIR: folder.dir });

  beforeAll(async () => {
    db = await createTestDatabase("cic");
    expect((await runCli([], env())).code).toBe(0);
    await db.query("INSERT INTO events (kind) SELECT 'k' || (g % 7) FROM generate_series(1, 1000) g");
  });
  afterAll(async () => {
    await db.drop();
    folder.remove();
  });

  /** Applies a no-transaction file holding `statement` while a write transaction stays open 1s. */
  async function buildWhileWriting(name: string, statement: string) {
    folder.add({ name, header: "-- yomu:no-transaction", statements: [statement] });
    const writer = new pg.Client(db.url);
    await writer.connect();
    try {
      await writer.query("BEGIN");
      await writer.query("INSERT INTO events (kind) VALUES ('open')");
      const runner = startCli(["--lock-timeout", "100ms"], env());
      await runner.waitFor("migration.plan");
      // Long enough for several lock_timeouts to have passed while the build waits.
      await new Promise((r) => setTimeout(r, 1000));
      await writer.query("COMMIT");
      return await runner.done;
    } finally {
      await writer.end();
    }
  }

  // Regression: under lock_timeout the build gave up waiting for an open write transaction, left
  // an INVALID index, and every retry failed with 42P07 "already exists" (bench/zero-downtime, c).
  it("waits for an open write transaction instead of timing out, and leaves a valid index", async () => {
    const run = await buildWhileWriting("index_kind", "CREATE INDEX CONCURRENTLY IF NOT EXISTS events_kind_idx ON events (kind)");
    expect(run.code, run.stdout).toBe(0);
    expect(eventsNamed(run, "migration.lock_timeout.retry")).toEqual([]);
    expect(await indexValid(db, "events_kind_idx")).toBe(true);
  });

  // Regression: a /* */ comment before the statement hid CONCURRENTLY from the applier's regex,
  // so the build ran under lock_timeout. PostgreSQL's parser sees through comments.
  it("sees CONCURRENTLY behind block comments and still waits instead of timing out", async () => {
    const run = await buildWhileWriting(
      "index_id_kind",
      "/* built while serving */ CREATE /* no table lock */ INDEX\n-- why: lookups\nCONCURRENTLY IF NOT EXISTS events_id_kind_idx ON events (id, kind)",
    );
    expect(run.code, run.stdout).toBe(0);
    expect(eventsNamed(run, "migration.lock_timeout.retry")).toEqual([]);
    expect(await indexValid(db, "events_id_kind_idx")).toBe(true);
  });

  it("drops an INVALID index a failed build left behind, then builds it", async () => {
    // A unique build over duplicates fails and leaves exactly what a killed build leaves.
    await db.query("CREATE UNIQUE INDEX CONCURRENTLY events_kind_key ON events (kind)").catch(() => {});
    expect(await indexValid(db, "events_kind_key")).toBe(false);
    await db.query("UPDATE events SET kind = kind || '-' || id");
    folder.add({
      name: "unique_kind",
      header: "-- yomu:no-transaction",
      statements: ["CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS events_kind_key ON events (kind)"],
    });
    const run = await runCli([], env());
    expect(run.code, run.stdout).toBe(0);
    expect(only(run, "migration.index.invalid_dropped")).toMatchObject({ severity: "WARNING", index: "events_kind_key" });
    expect(await indexValid(db, "events_kind_key")).toBe(true);
  });

  it("is reported by verify while an INVALID index exists", async () => {
    await db.query("INSERT INTO events (kind) VALUES ('dup'), ('dup2')");
    await db.query("CREATE UNIQUE INDEX CONCURRENTLY events_dup_key ON events ((substr(kind, 1, 1)))").catch(() => {});
    expect(await indexValid(db, "events_dup_key")).toBe(false);
    const run = await runCli(["verify"], env());
    expect(run.code).toBe(4);
    expect(eventsNamed(run, "migration.verify.problem").map((e) => e.message)).toContainEqual(
      expect.stringMatching(/index events_dup_key on public\.events is INVALID/),
    );
  });
});
