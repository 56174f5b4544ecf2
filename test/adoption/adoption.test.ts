import { readFileSync } from "node:fs";
import { join } from "node:path";
import { readMigrations } from "@yomu/migrator";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../../apps/api/src/app.js";
import { createDatabase } from "../../apps/api/src/shared/db/client.js";
import { createReadinessCheck } from "../../apps/api/src/shared/readiness.js";
import { STATEMENT_BREAKPOINT } from "../../packages/migrator/src/journal.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";
import { duplicates, finished, loadLegacySchema, migrationsDir, readCatalog, root, withClient, yomuMigrate } from "./support.js";

// T030: a database the retired docker/postgres/init.sql created, with rows in every table, is
// adopted by the first migration without losing a row or doubling a constraint.

const alice = "0f5c2f7a-1111-4c4c-9a9a-000000000001";
const bob = "0f5c2f7a-1111-4c4c-9a9a-000000000002";

async function insertLegacyRows(db: TestDatabase): Promise<void> {
  await db.query(`
    INSERT INTO users (id, email, name, created_at) VALUES
      ('${alice}', 'alice@example.com', 'Alice', '2025-03-01 10:00:00.123456+00'),
      ('${bob}', 'bob@example.com', 'Bob', '2025-03-02 11:30:00.654321+00');
    INSERT INTO sessions (user_id, token_hash, expires_at) VALUES
      ('${alice}', 'sha256:aaaa', '2030-01-01 00:00:00+00'),
      ('${bob}', 'sha256:bbbb', '2030-01-02 00:00:00+00');
    INSERT INTO bookmarks (user_id, url, title, created_at) VALUES
      ('${alice}', 'https://example.com/one', 'One', '2025-04-01 09:00:00.000001+00'),
      ('${alice}', 'https://example.com/two', '', '2025-04-02 09:00:00.000002+00'),
      ('${bob}', 'https://example.com/one', 'Bob''s one', '2025-04-03 09:00:00+00');`);
}

/** Every row of the three tables exactly as stored, microseconds included. */
async function allRows(db: TestDatabase): Promise<Record<string, string[]>> {
  const rows: Record<string, string[]> = {};
  for (const table of ["users", "sessions", "bookmarks"]) {
    rows[table] = (await db.query<{ row: string }>(`SELECT row_to_json(t)::text AS row FROM ${table} t ORDER BY id`)).rows.map(
      (r) => r.row,
    );
  }
  return rows;
}

// contype 'n': PostgreSQL 18 records each NOT NULL as a constraint too; the columns already say it.
async function names(db: TestDatabase): Promise<{ constraints: string[]; indexes: string[] }> {
  const constraints = await db.query<{ name: string }>(
    `SELECT conrelid::regclass::text || '.' || conname AS name FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
     WHERE n.nspname = 'public' AND c.contype <> 'n' ORDER BY 1`,
  );
  const indexes = await db.query<{ name: string }>(
    `SELECT tablename || '.' || indexname AS name FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1`,
  );
  return { constraints: constraints.rows.map((r) => r.name), indexes: indexes.rows.map((r) => r.name) };
}

/** The SQL block the README gives for converging an adopted database on drizzle-kit's names. */
function readmeConvergeSql(): string {
  const readme = readFileSync(join(root, "README.md"), "utf8");
  const block = /<!-- converge-legacy -->\s*```sql\n([\s\S]*?)```/.exec(readme);
  if (!block?.[1]) throw new Error("README.md has no <!-- converge-legacy --> sql block");
  return block[1];
}

describe("adopting a database created by init.sql", () => {
  let db: TestDatabase;
  let rowsBefore: Record<string, string[]>;
  let firstRun: Awaited<ReturnType<typeof yomuMigrate>>;

  beforeAll(async () => {
    db = await createTestDatabase("adopt");
    await loadLegacySchema(db);
    await insertLegacyRows(db);
    rowsBefore = await allRows(db);
    firstRun = await yomuMigrate(["up", "--dir", migrationsDir], { DATABASE_URL: db.url });
  });
  afterAll(() => db?.drop());

  it("applies the initial migration and keeps every row as it was", async () => {
    expect(firstRun.stderr).toBe("");
    expect(firstRun.code).toBe(0);
    expect(finished(firstRun)).toMatchObject({ status: "applied", fromVersion: null });
    expect(rowsBefore.bookmarks).toHaveLength(3);
    expect(await allRows(db)).toEqual(rowsBefore);
  });

  it("records the migration in drizzle's table, with drizzle's hash", async () => {
    const [initial] = readMigrations(migrationsDir);
    const recorded = await db.query<{ hash: string; created_at: string }>("SELECT hash, created_at FROM drizzle.__drizzle_migrations");
    expect(recorded.rows).toEqual([{ hash: initial?.hash, created_at: String(initial?.when) }]);
  });

  it("creates no second copy of a key, foreign key or index init.sql already had", async () => {
    expect(await duplicates(db)).toEqual([]);
    // init.sql's own names stay; only what it lacked was added, under drizzle-kit's names.
    expect(await names(db)).toEqual({
      constraints: [
        "bookmarks.bookmarks_pkey",
        "bookmarks.fk_bookmarks_user",
        "bookmarks.uq_bookmarks_user_url",
        "sessions.sessions_pkey",
        "sessions.sessions_token_hash_key",
        "sessions.sessions_user_id_fkey",
        "users.users_email_key",
        "users.users_pkey",
      ],
      indexes: [
        "bookmarks.bookmarks_pkey",
        "bookmarks.bookmarks_user_id_created_at_idx",
        "bookmarks.idx_bookmarks_user_created",
        "bookmarks.uq_bookmarks_user_url",
        "sessions.idx_sessions_user_id",
        "sessions.sessions_expires_at_idx",
        "sessions.sessions_pkey",
        "sessions.sessions_token_hash_key",
        "users.users_email_key",
        "users.users_pkey",
      ],
    });
  });

  it("serves the API on the adopted schema: reads, writes and the legacy keys all work", async () => {
    const database = createDatabase(db.url, { max: 2 });
    try {
      const app = createApp({
        db: database.db,
        checkReady: createReadinessCheck(database.pool, migrationsDir),
        log: Object.assign(() => {}, { addSecret() {} }),
      });
      const send = async (method: string, path: string, body?: unknown) => {
        const res = await app.request(path, {
          method,
          ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { "content-type": "application/json" } }),
        });
        return { status: res.status, body: (await res.json()) as Record<string, any> };
      };
      expect((await send("GET", "/readyz")).status).toBe(200);
      expect((await send("GET", `/users/${alice}`)).body.user).toMatchObject({ email: "alice@example.com", name: "Alice" });
      // users_email_key, init.sql's unique constraint, is what refuses the second Alice.
      expect((await send("POST", "/users", { email: "alice@example.com", name: "Alice again" })).status).toBe(409);
      expect((await send("POST", "/users", { email: "carol@example.com", name: "Carol" })).status).toBe(201);
      const added = await send("POST", `/users/${alice}/bookmarks`, { url: "https://example.com/three", title: "Three" });
      expect(added.status).toBe(201);
      expect((await send("POST", `/users/${alice}/bookmarks`, { url: "https://example.com/one" })).status).toBe(409);
      expect((await send("POST", "/users/0f5c2f7a-1111-4c4c-9a9a-00000000dead/bookmarks", { url: "https://example.com/x" })).status).toBe(
        404,
      );
      const list = await send("GET", `/users/${alice}/bookmarks`);
      expect(list.body.bookmarks.map((b: { url: string }) => b.url)).toEqual([
        "https://example.com/three",
        "https://example.com/two",
        "https://example.com/one",
      ]);
    } finally {
      await database.close();
    }
  });

  it("names each remaining difference from what the migrations build in verify (exit 4)", async () => {
    const run = await yomuMigrate(["verify", "--json", "--dir", migrationsDir], { DATABASE_URL: db.url });
    expect(run.code).toBe(4);
    const result = JSON.parse(run.stdout) as { problems: { kind: string; object: string }[] };
    expect(result.problems.map((p) => `${p.kind} ${p.object}`).sort()).toEqual([
      "column public.bookmarks.created_at",
      "column public.sessions.created_at",
      "column public.users.created_at",
      "foreign-key public.bookmarks.bookmarks_user_id_users_id_fk",
      "foreign-key public.sessions.sessions_user_id_users_id_fk",
      "index public.bookmarks.bookmarks_user_id_url_key",
      "index public.bookmarks.idx_bookmarks_user_created",
      "index public.sessions.sessions_user_id_idx",
      "unique public.sessions.sessions_token_hash_unique",
      "unique public.users.users_email_unique",
    ]);
  });

  it("does nothing on a second run, and the baseline's SQL run again by hand changes nothing", async () => {
    const catalog = await readCatalog(db);
    const again = await yomuMigrate(["up", "--dir", migrationsDir], { DATABASE_URL: db.url });
    expect(again.code).toBe(0);
    expect(finished(again)).toMatchObject({ status: "noop", applied: [] });
    const [initial] = readMigrations(migrationsDir);
    const sql = readFileSync(join(migrationsDir, `${initial?.tag}.sql`), "utf8");
    const statements = sql.split(STATEMENT_BREAKPOINT);
    expect(statements.length).toBeGreaterThan(10);
    await withClient(db.url, async (client) => {
      for (const statement of statements) await client.query(statement);
    });
    expect(await readCatalog(db)).toEqual(catalog);
    expect(await duplicates(db)).toEqual([]);
  });

  it("converges on drizzle-kit's names with the README's SQL, after which verify is clean", async () => {
    const rows = await allRows(db);
    await db.query(readmeConvergeSql());
    const run = await yomuMigrate(["verify", "--dir", migrationsDir], { DATABASE_URL: db.url });
    expect(run.events.filter((e) => e.event === "migration.verify.problem").map((e) => e.message)).toEqual([]);
    expect(run.code).toBe(0);
    expect((await allRows(db)).users).toHaveLength(rows.users?.length ?? -1);
    expect(await duplicates(db)).toEqual([]);
  });
});

describe("adopting a legacy database that lacks pieces of the schema", () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase("adopt_gaps");
    await loadLegacySchema(db);
    // Hand-maintained databases drift: a column never added, a constraint and an index dropped.
    await db.query(`
      ALTER TABLE bookmarks DROP COLUMN title;
      ALTER TABLE users DROP CONSTRAINT users_email_key;
      DROP INDEX idx_sessions_user_id;`);
    await db.query(`
      INSERT INTO users (id, email, name) VALUES ('${alice}', 'alice@example.com', 'Alice');
      INSERT INTO bookmarks (user_id, url) VALUES ('${alice}', 'https://example.com/one');`);
  });
  afterAll(() => db?.drop());

  it("adds the missing column with its default, and the missing key and index under drizzle-kit's names", async () => {
    const run = await yomuMigrate(["up", "--dir", migrationsDir], { DATABASE_URL: db.url });
    expect(run.code).toBe(0);
    expect((await db.query("SELECT url, title FROM bookmarks")).rows).toEqual([{ url: "https://example.com/one", title: "" }]);
    const { constraints, indexes } = await names(db);
    expect(constraints).toContain("users.users_email_unique");
    expect(indexes).toContain("sessions.sessions_user_id_idx");
    expect(await duplicates(db)).toEqual([]);
  });
});

describe("adopting a database while the API reads from it", () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase("adopt_live");
    await loadLegacySchema(db);
    await insertLegacyRows(db);
  });
  afterAll(() => db?.drop());

  it("takes no lock that blocks readers of init.sql's tables (ALTER TABLE runs only when a column is missing)", async () => {
    await withClient(db.url, async (reader) => {
      // An open transaction that has read every table holds ACCESS SHARE on each until it ends,
      // as a slow API request would; ALTER TABLE would wait for it, CREATE INDEX does not.
      await reader.query("BEGIN");
      await reader.query("SELECT count(*) FROM users, sessions, bookmarks");
      const run = await yomuMigrate(["up", "--dir", migrationsDir], {
        DATABASE_URL: db.url,
        MIGRATION_LOCK_TIMEOUT: "500ms",
        MIGRATION_LOCK_RETRIES: "0",
      });
      await reader.query("COMMIT");
      expect(run.events.filter((e) => e.event === "migration.failed")).toEqual([]);
      expect(run.code).toBe(0);
      expect(finished(run)?.status).toBe("applied");
    });
  });
});
