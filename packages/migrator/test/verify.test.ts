import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { drizzle } from "drizzle-orm/node-postgres";
import { migrate } from "drizzle-orm/node-postgres/migrator";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { adminUrl, createTestDatabase, type TestDatabase } from "../../../test/support/database.js";
import { type CliRun, only, runCli, withClient } from "./support/cli.js";
import { MigrationsFolder } from "./support/migrations.js";

// Issue 14: verify reported 1 to 57 differences on databases built only from their own
// migrations, and crashed on drizzle-kit snapshots with boolean defaults. The fixture holds every
// kind of object verify compares and every spelling that once caused a false alarm.
const fixture = fileURLToPath(new URL("./fixtures/verify-history", import.meta.url));

interface Problem {
  kind: string;
  object: string;
  message: string;
}
interface Result {
  clean: boolean;
  comparison: string;
  snapshot: string | null;
  problems: Problem[];
}

const verifyJson = async (env: Record<string, string>): Promise<{ run: CliRun; result: Result }> => {
  const run = await runCli(["verify", "--json"], env);
  return { run, result: JSON.parse(run.stdout) as Result };
};

/** Rows in every table, sequences moved on, the materialized view refreshed: what a live database has and a scratch one has not. */
async function liveData(db: TestDatabase): Promise<void> {
  await db.query(`
    INSERT INTO applications (email, note) VALUES ('a@example.com', 'first'), ('b@example.com', NULL);
    INSERT INTO billing.invoices (application_id, amount_cents) VALUES (1, 1200), (2, 99);
    INSERT INTO application_status_changes_recorded_by_the_audit_trail_of_each_application (application_id, to_status) VALUES (1, 'running');
    INSERT INTO events (at, payload) VALUES ('2026-03-01', '{"k": 1}');
    SELECT nextval('ticket_numbers'), nextval('ticket_numbers');
    REFRESH MATERIALIZED VIEW billing.invoice_totals;`);
}

describe("verify against a scratch database built from the same migrations", () => {
  let db: TestDatabase;
  const env = () => ({ DATABASE_URL: db.url, MIGRATIONS_DIR: fixture });

  beforeAll(async () => {
    db = await createTestDatabase("verify_up");
    const up = await runCli(["up"], env());
    expect(up.code, up.stdout).toBe(0);
    await liveData(db);
  });
  afterAll(() => db.drop());

  it("is clean on a database built by up, says it compared with a scratch database, and drops it", async () => {
    const run = await runCli(["verify"], env());
    expect(run.events.filter((e) => e.event === "migration.verify.problem").map((e) => e.message)).toEqual([]);
    expect(run.code).toBe(0);
    expect(only(run, "migration.verify.finished")).toMatchObject({ clean: true, comparison: "shadow", snapshot: null });
    const shadow = only(run, "migration.verify.shadow");
    expect(shadow).toMatchObject({ created: true, migrations: 3 });
    expect(shadow.objects as number).toBeGreaterThan(50);
    const name = String(shadow.database).split("/").pop();
    const left = await withClient(adminUrl(), (c) => c.query("SELECT 1 FROM pg_database WHERE datname = $1", [name]));
    expect(left.rowCount).toBe(0);
  });

  it("names each tampering, one line each, and nothing else (exit 4)", async () => {
    const copy = await createTestDatabase("verify_tamper");
    try {
      expect((await runCli(["up"], { DATABASE_URL: copy.url, MIGRATIONS_DIR: fixture })).code).toBe(0);
      await copy.query(`
        ALTER TABLE billing.invoices DROP CONSTRAINT invoices_amount_reasonable;
        DROP INDEX applications_lower_email_key;
        CREATE UNIQUE INDEX applications_lower_email_key ON applications (lower(email::text)) INCLUDE (status) WHERE note IS NULL;
        DROP POLICY invoices_no_overdraft ON billing.invoices;
        CREATE OR REPLACE VIEW active_applications AS SELECT id, status, email FROM applications WHERE status <> 'idle';
        ALTER TABLE applications ADD COLUMN nickname text;
        ALTER TABLE application_status_changes_recorded_by_the_audit_trail_of_each_application ALTER COLUMN from_status SET NOT NULL;
        ALTER TABLE billing.invoices ALTER COLUMN currency SET DEFAULT 'usd';
        CREATE OR REPLACE FUNCTION touch_status_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          NEW."at" := clock_timestamp();
          RETURN NEW;
        END;
        $$;`);
      const { run, result } = await verifyJson({ DATABASE_URL: copy.url, MIGRATIONS_DIR: fixture });
      expect(run.code).toBe(4);
      expect(result.comparison).toBe("shadow");
      expect(result.problems.map((p) => `${p.kind} ${p.object}`).sort()).toEqual([
        "check billing.invoices.invoices_amount_reasonable",
        "column billing.invoices.currency",
        // PostgreSQL cut the table name to 63 bytes; ids longer than that once collided and hid this one.
        "column public.application_status_changes_recorded_by_the_audit_trail_of_each_.from_status",
        "column public.applications.nickname",
        "function public.touch_status_change()",
        "index public.applications.applications_lower_email_key",
        "policy billing.invoices.invoices_no_overdraft",
        "view public.active_applications",
      ]);
      const messages = result.problems.map((p) => p.message);
      expect(messages).toContainEqual("check constraint invoices_amount_reasonable on billing.invoices is missing");
      expect(messages).toContainEqual(
        expect.stringMatching(
          /^index applications_lower_email_key on public.applications differs in definition: .*WHERE \(note IS NULL\).*migrations build .*WHERE \(note IS NOT NULL\)/,
        ),
      );
      expect(messages).toContainEqual("policy invoices_no_overdraft on billing.invoices is missing");
      expect(messages).toContainEqual(
        expect.stringMatching(/^view public.active_applications differs in definition: .*'idle'.*migrations build .*'done'/),
      );
      expect(messages).toContainEqual("column public.applications.nickname (text) exists but no migration creates it");
      expect(messages).toContainEqual(
        "column billing.invoices.currency differs in default: database has 'usd'::billing.currency, migrations build 'eur'::billing.currency",
      );
      expect(messages).toContainEqual(
        expect.stringMatching(
          /^function public.touch_status_change\(\) differs in definition: .*clock_timestamp\(\).*migrations build .*now\(\)/,
        ),
      );
    } finally {
      await copy.drop();
    }
  });

  it("is clean on a database built by drizzle-orm's own migrate()", async () => {
    const other = await createTestDatabase("verify_drizzle");
    try {
      const client = new pg.Client(other.url);
      await client.connect();
      try {
        await migrate(drizzle(client), { migrationsFolder: fixture });
      } finally {
        await client.end();
      }
      await liveData(other);
      const { run, result } = await verifyJson({ DATABASE_URL: other.url, MIGRATIONS_DIR: fixture });
      expect(result.problems).toEqual([]);
      expect(run.code).toBe(0);
      expect(result.comparison).toBe("shadow");
    } finally {
      await other.drop();
    }
  });

  it("builds the expected schema in the database --shadow-database-url names, empties it afterwards, and refuses one in use", async () => {
    const shadow = await createTestDatabase("verify_given_shadow");
    try {
      const run = await runCli(["verify", "--shadow-database-url", shadow.url], env());
      expect(run.code).toBe(0);
      expect(only(run, "migration.verify.shadow")).toMatchObject({
        created: false,
        database: `127.0.0.1:${new URL(shadow.url).port}/${shadow.name}`,
      });
      await shadow.query("CREATE TABLE leftover (id int)");
      const refused = await runCli(["verify", "--shadow-database-url", shadow.url], env());
      expect(refused.code).toBe(2);
      expect(only(refused, "migration.error").message).toMatch(/the shadow database .* is not empty/);
      await shadow.query("DROP TABLE leftover");
      const left = await shadow.query(
        "SELECT nspname FROM pg_namespace WHERE nspname IN ('billing', 'drizzle') UNION ALL SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace",
      );
      expect(left.rows).toEqual([]);
    } finally {
      await shadow.drop();
    }
  });
});

describe("verify while migrations are pending", () => {
  it("lists the pending ones and still compares what is applied with what those migrations build", async () => {
    const folder = new MigrationsFolder([
      { name: "first", statements: ["CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL)"] },
    ]);
    const db = await createTestDatabase("verify_pending");
    try {
      const env = { DATABASE_URL: db.url, MIGRATIONS_DIR: folder.dir };
      expect((await runCli(["up"], env)).code).toBe(0);
      folder.add({ name: "second", statements: ["ALTER TABLE items ADD COLUMN price integer"] });
      expect((await verifyJson(env)).result.problems.map((p) => p.kind)).toEqual(["pending"]);
      await db.query("ALTER TABLE items ALTER COLUMN name DROP NOT NULL");
      const { run, result } = await verifyJson(env);
      expect(run.code).toBe(4);
      expect(result.problems.map((p) => p.message)).toEqual([
        expect.stringMatching(/_second\.sql: not applied yet/),
        "column public.items.name differs in nullability: database has nullable, migrations build NOT NULL",
      ]);
    } finally {
      await db.drop();
      folder.remove();
    }
  });
});

describe("when no scratch database can be made", () => {
  const role = `verify_nocreatedb_${randomBytes(4).toString("hex")}`;
  let db: TestDatabase;
  let folder: MigrationsFolder;
  const roleUrl = () => {
    const url = new URL(db.url);
    url.username = role;
    url.password = "";
    return url.toString();
  };

  beforeAll(async () => {
    await withClient(adminUrl(), (c) => c.query(`CREATE ROLE ${role} LOGIN NOCREATEDB`));
    db = await createTestDatabase("verify_fallback");
    folder = new MigrationsFolder([
      {
        name: "flags",
        statements: [
          `CREATE TYPE "public"."applicationStatus" AS ENUM('idle', 'busy')`,
          `CREATE TABLE "flags" ("id" serial PRIMARY KEY NOT NULL, "on" boolean DEFAULT false NOT NULL, "weight" integer DEFAULT 0 NOT NULL, "state" "applicationStatus" DEFAULT 'idle' NOT NULL, "note" text DEFAULT null, "settings" jsonb DEFAULT '{"theme":"dark","beta":true}'::jsonb)`,
        ],
      },
    ]);
    expect((await runCli(["up"], { DATABASE_URL: db.url, MIGRATIONS_DIR: folder.dir })).code).toBe(0);
    await db.query(`GRANT USAGE ON SCHEMA drizzle TO ${role}; GRANT SELECT ON ALL TABLES IN SCHEMA drizzle TO ${role}`);
  });
  afterAll(async () => {
    await db.drop();
    folder.remove();
    await withClient(adminUrl(), (c) => c.query(`DROP ROLE IF EXISTS ${role}`));
  });

  it("refuses with exit 2 and says why when there is no snapshot to fall back on", async () => {
    const run = await runCli(["verify"], { DATABASE_URL: roleUrl(), MIGRATIONS_DIR: folder.dir });
    expect(run.code).toBe(2);
    expect(only(run, "migration.error").message).toMatch(/cannot create a scratch database .*permission denied.*no drizzle-kit snapshot/);
  });

  it("falls back to drizzle-kit's snapshot, says so, and reads its boolean, number, enum and jsonb defaults", async () => {
    const [migration] = folder.migrations;
    const prefix = migration?.tag.split("_")[0];
    writeFileSync(
      join(folder.dir, "meta", `${prefix}_snapshot.json`),
      JSON.stringify({
        version: "7",
        dialect: "postgresql",
        tables: {
          "public.flags": {
            name: "flags",
            schema: "",
            columns: {
              id: { name: "id", type: "serial", primaryKey: true, notNull: true },
              on: { name: "on", type: "boolean", primaryKey: false, notNull: true, default: false },
              weight: { name: "weight", type: "integer", primaryKey: false, notNull: true, default: 0 },
              state: {
                name: "state",
                type: "applicationStatus",
                typeSchema: "public",
                primaryKey: false,
                notNull: true,
                default: "'idle'",
              },
              note: { name: "note", type: "text", primaryKey: false, notNull: false, default: null },
              settings: {
                name: "settings",
                type: "jsonb",
                primaryKey: false,
                notNull: false,
                default: `'{"theme":"dark","beta":true}'::jsonb`,
              },
            },
            indexes: {},
            foreignKeys: {},
            compositePrimaryKeys: {},
            uniqueConstraints: {},
          },
        },
        enums: { "public.applicationStatus": { name: "applicationStatus", schema: "public", values: ["idle", "busy"] } },
      }),
    );
    const run = await runCli(["verify"], { DATABASE_URL: roleUrl(), MIGRATIONS_DIR: folder.dir });
    expect(run.events.filter((e) => e.event === "migration.verify.problem").map((e) => e.message)).toEqual([]);
    expect(run.code).toBe(0);
    expect(only(run, "migration.verify.fallback")).toMatchObject({
      severity: "WARNING",
      comparison: "snapshot",
      code: "SHADOW_UNAVAILABLE",
    });
    expect(only(run, "migration.verify.finished")).toMatchObject({
      comparison: "snapshot",
      snapshot: expect.stringMatching(/_snapshot\.json$/),
    });
    const json = await verifyJson({ DATABASE_URL: roleUrl(), MIGRATIONS_DIR: folder.dir });
    expect(json.result).toMatchObject({ clean: true, comparison: "snapshot" });
    expect(json.run.stderr).toMatch(/"event":"migration.verify.fallback"/);
  });
});

describe("verify's errors", () => {
  it("exits 8 naming the step when drizzle's table is not what drizzle makes, and 2 when it may not read it", async () => {
    const folder = new MigrationsFolder([{ name: "one", statements: ["CREATE TABLE one (id int)"] }]);
    const db = await createTestDatabase("verify_internal");
    const role = `verify_noread_${randomBytes(4).toString("hex")}`;
    try {
      await db.query("CREATE SCHEMA drizzle; CREATE TABLE drizzle.__drizzle_migrations (id serial PRIMARY KEY, created_at bigint)");
      const broken = await runCli(["verify"], { DATABASE_URL: db.url, MIGRATIONS_DIR: folder.dir });
      expect(broken.code).toBe(8);
      expect(only(broken, "migration.error")).toMatchObject({
        code: "INTERNAL",
        message: expect.stringMatching(/^verify failed while reading drizzle's migrations table: column "hash" does not exist/),
      });
      await withClient(adminUrl(), (c) => c.query(`CREATE ROLE ${role} LOGIN`));
      const url = new URL(db.url);
      url.username = role;
      const denied = await runCli(["verify"], { DATABASE_URL: url.toString(), MIGRATIONS_DIR: folder.dir });
      expect(denied.code).toBe(2);
      expect(only(denied, "migration.error").message).toMatch(/reading drizzle's migrations table: permission denied for schema drizzle/);
    } finally {
      await db.drop();
      folder.remove();
      await withClient(adminUrl(), (c) => c.query(`DROP ROLE IF EXISTS ${role}`));
    }
  });
});
