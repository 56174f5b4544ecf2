import { onShutdownSignal, ServerStartError, startServer } from "./server.js";
import { createAppLogger } from "./shared/log.js";
import { migrationsDir } from "./shared/migrations.js";

// The deployed entry point: DATABASE_URL is required; migrations are applied beforehand by the
// Job (or Compose), and /readyz stays 503 until they are.
const log = createAppLogger();
const databaseUrl = process.env.DATABASE_URL;
if (!databaseUrl) {
  log({ event: "server.config.invalid", severity: "CRITICAL", message: "DATABASE_URL is not set" });
  process.exit(2);
}
log.addSecret(safePassword(databaseUrl));
try {
  const server = await startServer({ databaseUrl, port: Number(process.env.PORT ?? 3000), migrationsDir: migrationsDir(), log });
  onShutdownSignal(server.close);
} catch (error) {
  if (!(error instanceof ServerStartError)) throw error;
  log({ event: "server.config.invalid", severity: "CRITICAL", message: error.message });
  process.exit(2);
}

function safePassword(url: string): string {
  try {
    return decodeURIComponent(new URL(url).password);
  } catch {
    return "";
  }
}
