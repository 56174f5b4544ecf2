// The floor for a no-op run: node, pg, one connection, one query. Whatever a migrator does on
// top (read the folder, lock, read drizzle's rows, record the run) is measured against this.
import pg from "pg";

const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
await client.connect();
try {
  await client.query("SELECT 1");
} finally {
  await client.end();
}
