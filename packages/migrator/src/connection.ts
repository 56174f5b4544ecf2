import pg from "pg";
import { MigratorError } from "./errors.js";
import type { EventSink } from "./log.js";

/** What may be logged about a database: never the user's password or the full URL. */
export function describeDatabase(url: string): string {
  try {
    const parsed = new URL(url);
    const database = decodeURIComponent(parsed.pathname.replace(/^\//, "")) || "(default)";
    return `${parsed.hostname}${parsed.port ? `:${parsed.port}` : ""}/${database}`;
  } catch {
    return "(unparseable DATABASE_URL)";
  }
}

// Errors that mean "not up yet": refused or reset connections, DNS not ready in a fresh pod,
// PostgreSQL starting up or shutting down (57P03 cannot_connect_now, 57P01 admin_shutdown).
const transientCodes = new Set(["ECONNREFUSED", "ECONNRESET", "ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT", "EHOSTUNREACH", "57P03", "57P01"]);

function isTransient(error: unknown): boolean {
  const code = (error as { code?: string })?.code;
  if (code && transientCodes.has(code)) return true;
  return /Connection terminated|timeout expired/i.test(String((error as Error)?.message));
}

export interface ConnectOptions {
  url: string;
  applicationName: string;
  /** Give up after this long (ms) of failed attempts. */
  timeoutMs: number;
  onEvent: EventSink;
  signal?: AbortSignal;
}

/**
 * Opens one dedicated connection (not a pool: the advisory lock belongs to a session), retrying
 * with backoff while the server is not reachable yet, as in Compose and Kubernetes start-up.
 */
export async function connect(options: ConnectOptions): Promise<pg.Client> {
  const started = Date.now();
  const where = describeDatabase(options.url);
  let delay = 250;
  for (let attempt = 1; ; attempt++) {
    const remaining = options.timeoutMs - (Date.now() - started);
    const client = new pg.Client({
      connectionString: options.url,
      application_name: options.applicationName,
      // Each attempt gets at most what is left of --connect-timeout, so a server that never
      // answers cannot stretch the bound by a whole attempt.
      connectionTimeoutMillis: Math.max(1000, Math.min(5000, remaining)),
    });
    try {
      await client.connect();
      client.on("error", () => {
        // A dropped connection surfaces as a failed query; the listener keeps it from crashing the process.
      });
      return client;
    } catch (error) {
      await client.end().catch(() => {});
      const elapsed = Date.now() - started;
      if (!isTransient(error)) {
        const code = (error as { code?: string }).code;
        throw new MigratorError("CONFIG_INVALID", `cannot connect to ${where}: ${(error as Error).message}`, {
          cause: error,
          details: { sqlstate: code },
          hint: "check DATABASE_URL's user, password and database name",
        });
      }
      if (options.signal?.aborted) {
        // Stopped by a signal while waiting: not the unreachable database the bound is about.
        throw new MigratorError("INTERRUPTED", `interrupted while waiting for database ${where}`, { cause: error });
      }
      if (elapsed + delay > options.timeoutMs) {
        throw new MigratorError(
          "DATABASE_UNREACHABLE",
          `database ${where} not reachable after ${attempt} attempts over ${Math.round(elapsed / 1000)}s: ${(error as Error).message}`,
          { cause: error, hint: "check that PostgreSQL is running and reachable; raise --connect-timeout to wait longer" },
        );
      }
      options.onEvent({
        event: "migration.db.waiting",
        severity: "NOTICE",
        message: `database ${where} not reachable yet, retrying in ${delay}ms`,
        attempt,
        error: (error as Error).message,
      });
      await sleep(delay, options.signal);
      delay = Math.min(delay * 2, 5000);
    }
  }
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((done) => {
    if (signal?.aborted) return done();
    const timer = setTimeout(finish, ms);
    function finish() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", finish);
      done();
    }
    signal?.addEventListener("abort", finish, { once: true });
  });
}
