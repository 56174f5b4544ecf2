import { runMigrations } from "@yomu/migrator";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../../test/support/database.js";
import { createApp } from "../src/app.js";
import { bookmarksPage } from "../src/routes/users.js";
import { createDatabase } from "../src/shared/db/client.js";
import { migrationsDir } from "../src/shared/migrations.js";
import { createReadinessCheck } from "../src/shared/readiness.js";

const lines: string[] = [];
const log = Object.assign((e: Record<string, unknown>) => lines.push(JSON.stringify(e)), { addSecret() {} });

let testDb: TestDatabase;
let database: ReturnType<typeof createDatabase>;
let app: ReturnType<typeof createApp>;

beforeAll(async () => {
  testDb = await createTestDatabase("api");
  database = createDatabase(testDb.url);
  app = createApp({ db: database.db, checkReady: createReadinessCheck(database.pool, migrationsDir()), log });
});
afterAll(async () => {
  await database.close();
  await testDb.drop();
});

async function send(method: string, path: string, body?: unknown) {
  const init: RequestInit = { method };
  if (body !== undefined) {
    init.body = typeof body === "string" ? body : JSON.stringify(body);
    init.headers = { "content-type": "application/json" };
  }
  const res = await app.request(path, init);
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

describe("health", () => {
  it("is live regardless of the schema", async () => {
    expect(await send("GET", "/healthz")).toEqual({ status: 200, body: { status: "ok" } });
  });

  it("is not ready before the migrations run, and says what it expects", async () => {
    const res = await send("GET", "/readyz");
    expect(res.status).toBe(503);
    expect(res.body.schemaVersion).toBeNull();
    expect(res.body.expectedVersion).toMatch(/^\d{14}_initial_schema$/);
    expect(res.body.pending.length).toBeGreaterThan(0);
  });

  it("is ready once every migration this build ships is applied", async () => {
    const result = await runMigrations({ databaseUrl: testDb.url, dir: migrationsDir() });
    expect(result.error).toBeUndefined();
    const res = await send("GET", "/readyz");
    expect(res.status).toBe(200);
    expect(res.body.status).toBe("ready");
    expect(res.body.schemaVersion).toBe(res.body.expectedVersion);
  });
});

describe("users and bookmarks", () => {
  let userId: string;

  it("creates a user", async () => {
    const res = await send("POST", "/users", { email: "ada@example.com", name: "Ada" });
    expect(res.status).toBe(201);
    expect(res.body.user).toMatchObject({ email: "ada@example.com", name: "Ada" });
    userId = res.body.user.id;
  });

  it.each([
    ["a missing name", { email: "b@example.com" }],
    ["a bad email", { email: "not-an-email", name: "B" }],
    ["a body that is not JSON", "{oops"],
    ["no body", undefined],
  ])("rejects %s with a 400 naming the problem", async (_case, body) => {
    const res = await send("POST", "/users", body);
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe("invalid_body");
  });

  it("refuses a second user with the same email with 409", async () => {
    const res = await send("POST", "/users", { email: "ada@example.com", name: "Other" });
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe("email_taken");
  });

  it("saves bookmarks and lists them newest first, a page at a time", async () => {
    for (const n of [1, 2, 3]) {
      const res = await send("POST", `/users/${userId}/bookmarks`, { url: `https://example.com/${n}`, title: `page ${n}` });
      expect(res.status).toBe(201);
      // created_at keeps milliseconds: two saves in one millisecond tie, and a tie is ordered by
      // the random uuid, so "newest first" needs the saves a millisecond apart.
      await new Promise((resolve) => setTimeout(resolve, 3));
    }
    const first = await send("GET", `/users/${userId}/bookmarks?limit=2`);
    expect(first.status).toBe(200);
    expect(first.body.bookmarks.map((b: { url: string }) => b.url)).toEqual(["https://example.com/3", "https://example.com/2"]);
    const second = await send("GET", `/users/${userId}/bookmarks?limit=2&cursor=${first.body.nextCursor}`);
    expect(second.body.bookmarks.map((b: { url: string }) => b.url)).toEqual(["https://example.com/1"]);
    expect(second.body.nextCursor).toBeNull();
  });

  it("refuses the same URL twice for one user with 409", async () => {
    const res = await send("POST", `/users/${userId}/bookmarks`, { url: "https://example.com/1" });
    expect(res.status).toBe(409);
  });

  it.each([
    ["a URL that is not http(s)", { url: "javascript:alert(1)" }],
    ["a missing URL", { title: "x" }],
  ])("rejects %s with 400", async (_case, body) => {
    const res = await send("POST", `/users/${userId}/bookmarks`, body);
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe("invalid_body");
  });

  it("answers 404 for an unknown user and 400 for an id that is not a UUID", async () => {
    const unknown = "00000000-0000-4000-8000-000000000000";
    expect((await send("POST", `/users/${unknown}/bookmarks`, { url: "https://example.com" })).status).toBe(404);
    expect((await send("GET", `/users/${unknown}/bookmarks`)).status).toBe(404);
    expect((await send("GET", `/users/${unknown}`)).status).toBe(404);
    expect((await send("GET", "/users/42/bookmarks")).body.error.code).toBe("invalid_id");
  });

  it("rejects a bad page size and a forged cursor with 400", async () => {
    expect((await send("GET", `/users/${userId}/bookmarks?limit=0`)).status).toBe(400);
    expect((await send("GET", `/users/${userId}/bookmarks?cursor=bm90LWEtY3Vyc29y`)).body.error.code).toBe("invalid_cursor");
  });

  it("answers an unknown route with a JSON 404", async () => {
    const res = await send("GET", "/nope");
    expect(res).toMatchObject({ status: 404, body: { error: { code: "not_found" } } });
  });

  it("logs each request as one JSON line in the contract's shape", () => {
    const entry = lines.map((l) => JSON.parse(l)).find((e) => e.event === "http.request" && e.path === "/healthz");
    expect(entry).toMatchObject({ severity: "INFO", method: "GET", status: 200 });
  });
});

describe("listing a user's bookmarks", () => {
  // Regression: the page query ordered by plain DESC (NULLS FIRST), which the index drizzle-kit
  // generates (DESC NULLS LAST) cannot serve, so every request sorted all of the user's bookmarks.
  it("is served in order by bookmarks_user_id_created_at_idx, without a sort", async () => {
    const [user] = (await database.pool.query("INSERT INTO users (email, name) VALUES ('many@example.com', 'Many') RETURNING id")).rows;
    await database.pool.query(
      `INSERT INTO bookmarks (user_id, url, created_at) SELECT $1, 'https://example.com/' || g, now() - g * interval '1 minute' FROM generate_series(1, 2000) g`,
      [user.id],
    );
    await database.pool.query("ANALYZE bookmarks");
    const query = bookmarksPage(database.db, user.id, 21).toSQL();
    const plan = (await database.pool.query(`EXPLAIN ${query.sql}`, query.params)).rows.map((r) => r["QUERY PLAN"]).join("\n");
    expect(plan).toContain("Index Scan using bookmarks_user_id_created_at_idx");
    expect(plan).not.toContain("Sort");
  });
});

describe("an error the API did not expect", () => {
  it("answers a JSON 500 and logs the database's reason, not only drizzle's 'Failed query'", async () => {
    const empty = await createTestDatabase("api_empty");
    const broken = createDatabase(empty.url);
    const errors: Array<Record<string, unknown>> = [];
    const brokenLog = Object.assign((e: Record<string, unknown>) => errors.push(e), { addSecret() {} });
    try {
      const api = createApp({ db: broken.db, checkReady: createReadinessCheck(broken.pool, migrationsDir()), log: brokenLog });
      const res = await api.request("/users/00000000-0000-4000-8000-000000000000");
      expect(res.status).toBe(500);
      expect(await res.json()).toEqual({ error: { code: "internal", message: "internal error" } });
      const logged = errors.find((e) => e.event === "http.error");
      expect(logged?.message).toMatch(/relation "users" does not exist/);
      expect(logged?.code).toBe("42P01");
    } finally {
      await broken.close();
      await empty.drop();
    }
  });
});
