import { randomBytes } from "node:crypto";
import pg from "pg";
import { describeDatabase } from "./connection.js";
import { MigratorError } from "./errors.js";

/** A scratch database that `verify` and `plan` build from migrations and throw away. */
export interface ShadowDatabase {
  /** Connection string of the scratch database (same credentials as the one it was made beside). */
  url: string;
  /** Whether this process created it (and so drops it), or it was given with `--shadow-database-url`. */
  created: boolean;
  /** Drops a database this process created; a given one is left, emptied of what the run built. */
  drop(): Promise<void>;
}

export interface ShadowOptions {
  /** The live database; the scratch one is created on the same server with the same credentials. */
  databaseUrl: string;
  /** Use this empty database instead of creating one (for users who may not `CREATE DATABASE`). */
  shadowDatabaseUrl?: string;
  /** A word in the scratch database's name, so `pg_stat_activity` shows what made it. */
  purpose?: string;
}

const SHADOW_PREFIX = "yomu_shadow";

/**
 * Makes an empty scratch database: a fresh one from `template0` beside the live database, or the
 * one named by `shadowDatabaseUrl`, which must hold no schema objects of its own.
 *
 * @example
 *   const shadow = await createShadowDatabase({ databaseUrl });
 *   try { await runMigrations({ databaseUrl: shadow.url, dir }); } finally { await shadow.drop(); }
 */
export async function createShadowDatabase(options: ShadowOptions): Promise<ShadowDatabase> {
  if (options.shadowDatabaseUrl) return givenShadow(options.shadowDatabaseUrl);
  const name = `${SHADOW_PREFIX}_${options.purpose ?? "scratch"}_${randomBytes(5).toString("hex")}`.slice(0, 63);
  const url = new URL(options.databaseUrl);
  url.pathname = `/${name}`;
  // template0: template1 may carry objects a DBA added, which would show up as differences.
  await withClient(options.databaseUrl, async (client) => {
    try {
      await client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)} TEMPLATE template0`);
    } catch (cause) {
      throw new MigratorError(
        "SHADOW_UNAVAILABLE",
        `cannot create a scratch database beside ${describeDatabase(options.databaseUrl)}: ${(cause as Error).message}`,
        {
          cause,
          details: { sqlstate: (cause as { code?: string }).code },
          hint: "grant CREATEDB to this user, or pass --shadow-database-url (SHADOW_DATABASE_URL) naming an empty database",
        },
      );
    }
  });
  return {
    url: url.toString(),
    created: true,
    drop: () =>
      withClient(options.databaseUrl, async (client) => {
        // WITH (FORCE), PostgreSQL 13+: a connection the run left behind must not keep it alive.
        await client.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
      }),
  };
}

async function givenShadow(url: string): Promise<ShadowDatabase> {
  const leftovers = await withClient(url, async (client) => {
    const { rows } = await client.query<{ schema: string }>(
      `SELECT nspname AS schema FROM pg_namespace
        WHERE nspname NOT IN ('public', 'information_schema') AND nspname NOT LIKE 'pg\\_%'
       UNION ALL
       SELECT 'public' FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' LIMIT 1`,
    );
    return rows.map((r) => r.schema);
  });
  if (leftovers.length > 0) {
    throw new MigratorError(
      "SHADOW_UNAVAILABLE",
      `the shadow database ${describeDatabase(url)} is not empty (schemas ${[...new Set(leftovers)].join(", ")})`,
      { hint: "point --shadow-database-url at an empty database; it is emptied after each use" },
    );
  }
  return {
    url,
    created: false,
    drop: () =>
      withClient(url, async (client) => {
        const { rows } = await client.query<{ schema: string }>(
          `SELECT nspname AS schema FROM pg_namespace
            WHERE nspname NOT IN ('information_schema') AND nspname NOT LIKE 'pg\\_%'`,
        );
        for (const { schema } of rows) await client.query(`DROP SCHEMA ${pg.escapeIdentifier(schema)} CASCADE`);
        await client.query("CREATE SCHEMA public");
      }),
  };
}

async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, application_name: "yomu-migrate shadow" });
  try {
    await client.connect();
  } catch (cause) {
    throw new MigratorError("SHADOW_UNAVAILABLE", `cannot connect to ${describeDatabase(url)}: ${(cause as Error).message}`, {
      cause,
      hint: "check the database URL and that the server is reachable",
    });
  }
  client.on("error", () => {});
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}
