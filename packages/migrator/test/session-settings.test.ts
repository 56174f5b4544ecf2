import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { adminUrl, createTestDatabase, type TestDatabase } from "../../../test/support/database.js";
import { runMigrations } from "../src/index.js";
import { MigrationsFolder } from "./support/migrations.js";
import { type PgBouncer, startPgBouncer } from "./support/pgbouncer.js";

// The run's timeouts travel in the startup packet (issue 17 item 5: a SET round trip each saved).
// Whatever carries the connection, the migrations must still run under them: a URL with its own
// `options`, a PgBouncer that refuses startup options (1.18's default), one told to drop them.
const folder = new MigrationsFolder([
  {
    name: "record_settings",
    statements: [
      `CREATE TABLE seen AS SELECT current_setting('lock_timeout') AS lock_timeout,
         current_setting('statement_timeout') AS statement_timeout,
         current_setting('client_connection_check_interval') AS check_interval`,
    ],
  },
]);
afterAll(() => folder.remove());

const options = { dir: folder.dir, lockTimeoutMs: 1234, statementTimeoutMs: 56_789, host: "settings-test" };

async function expectSettings(db: TestDatabase, databaseUrl: string): Promise<void> {
  const result = await runMigrations({ ...options, databaseUrl });
  expect(result.error, result.error?.message).toBeUndefined();
  expect(result.status).toBe("applied");
  const { rows } = await db.query("SELECT * FROM seen");
  expect(rows).toEqual([{ lock_timeout: "1234ms", statement_timeout: "56789ms", check_interval: "1s" }]);
}

describe("the run's session settings", () => {
  let db: TestDatabase;
  let plain: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase("settings");
    plain = await createTestDatabase("settings_plain");
  });
  afterAll(async () => {
    await db.drop();
    await plain.drop();
  });

  it("apply on a direct connection, from the startup packet", async () => {
    await expectSettings(plain, plain.url);
  });

  it("apply on a direct connection whose URL sets other values in its own options", async () => {
    const url = new URL(db.url);
    url.searchParams.set("options", "-c lock_timeout=9999 -c statement_timeout=8888");
    await expectSettings(db, url.toString());
  });
});

describe.each([
  ["refuses startup options", []],
  ["drops startup options (ignore_startup_parameters)", ["ignore_startup_parameters = options"]],
])("through a session-pooling PgBouncer that %s", (_how, ini) => {
  let bouncer: PgBouncer;
  let db: TestDatabase;
  beforeAll(async () => {
    bouncer = await startPgBouncer(adminUrl(), "session", ini);
    db = await createTestDatabase("settings_pool");
  });
  afterAll(async () => {
    await bouncer.stop();
    await db.drop();
  });

  it("still apply", async () => {
    await expectSettings(db, bouncer.through(db.url));
  });
});
