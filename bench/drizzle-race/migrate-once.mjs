// One bare drizzle-orm migrate() call, as an app would write it; exits 1 if it throws.
import { drizzle } from "drizzle-orm/node-postgres";
import { migrate } from "drizzle-orm/node-postgres/migrator";
import pg from "pg";

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 1 });
try {
  await migrate(drizzle(pool), { migrationsFolder: process.env.MIGRATIONS_DIR });
} catch (error) {
  console.error(error.cause?.message ?? error.message);
  process.exitCode = 1;
} finally {
  await pool.end();
}
