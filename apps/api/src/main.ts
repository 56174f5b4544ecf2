import { onShutdownSignal, startServer } from "./server.js";
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
const server = await startServer({ databaseUrl, port: Number(process.env.PORT ?? 3000), migrationsDir: migrationsDir(), log });
onShutdownSignal(server.close);

function safePassword(url: string): string {
  try {
    return decodeURIComponent(new URL(url).password);
  } catch {
    return "";
  }
}
