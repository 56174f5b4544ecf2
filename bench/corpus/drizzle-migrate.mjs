// Applies a drizzle-kit folder with drizzle-orm's own migrate(): 0.45 for the journal layout, the
// 1.0 release candidate (installed as drizzle-orm-v1) for drizzle-kit 1.0's folders. One pg client,
// as an app does at start-up. Env: DATABASE_URL, MIGRATIONS_DIR, LAYOUT (journal | folders).
import pg from "pg";

const v1 = process.env.LAYOUT === "folders";
const { drizzle } = await import(v1 ? "drizzle-orm-v1/node-postgres" : "drizzle-orm/node-postgres");
const { migrate } = await import(v1 ? "drizzle-orm-v1/node-postgres/migrator" : "drizzle-orm/node-postgres/migrator");

const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
await client.connect();
try {
  await migrate(v1 ? drizzle({ client }) : drizzle(client), { migrationsFolder: process.env.MIGRATIONS_DIR });
} catch (error) {
  process.stderr.write(`${error?.cause?.message ?? error?.message ?? error}\n`);
  process.exitCode = 1;
} finally {
  await client.end();
}
