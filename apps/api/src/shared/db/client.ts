import { drizzle, type NodePgDatabase } from "drizzle-orm/node-postgres";
import pg from "pg";
import * as schema from "./schema.js";

export type Database = NodePgDatabase<typeof schema>;

/** A pool and the drizzle handle over it; `close()` ends the pool. */
export function createDatabase(url: string, options: { max?: number; applicationName?: string } = {}) {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.max ?? 10,
    application_name: options.applicationName ?? "yomu-api",
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
  });
  // An idle client losing its connection (a database restart) must not crash the process;
  // the next query gets a fresh one.
  pool.on("error", () => {});
  const db: Database = drizzle(pool, { schema });
  return { pool, db, close: () => pool.end() };
}
