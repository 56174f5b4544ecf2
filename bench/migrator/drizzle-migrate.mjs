// The baseline: the smallest program that applies a drizzle-kit folder with drizzle-orm's own
// migrate(), on one pg client, as an app would at start-up. No lock, no checks, no logs.
import { drizzle } from "drizzle-orm/node-postgres";
import { migrate } from "drizzle-orm/node-postgres/migrator";
import pg from "pg";

const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
await client.connect();
try {
  await migrate(drizzle(client), { migrationsFolder: process.env.MIGRATIONS_DIR });
} finally {
  await client.end();
}
