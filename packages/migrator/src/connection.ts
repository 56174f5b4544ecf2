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
  /** A URL, or the parameters a borrowed client was opened with (secondConnection). */
  url: string | pg.ClientConfig;
  applicationName: string;
  /** Give up after this long (ms) of failed attempts. */
  timeoutMs: number;
  onEvent: EventSink;
  signal?: AbortSignal;
  /**
   * Session settings sent in the startup packet (`options`), which saves a `SET` round trip
   * each. A server or pooler that refuses them (PgBouncer without `ignore_startup_parameters`,
   * a PostgreSQL that lacks a setting) gets a second connection without them, and one that
   * drops them silently is not noticed here: the caller reads back what is in effect.
   */
  settings?: Record<string, string | number>;
}

/**
 * Opens one dedicated connection (not a pool: the advisory lock belongs to a session), retrying
 * with backoff while the server is not reachable yet, as in Compose and Kubernetes start-up.
 */
export async function connect(options: ConnectOptions): Promise<pg.Client> {
  const started = Date.now();
  const where = typeof options.url === "string" ? describeDatabase(options.url) : describeConfig(options.url);
  let delay = 250;
  let startupOptions = startupOptionsOf(options.settings);
  for (let attempt = 1; ; attempt++) {
    const remaining = options.timeoutMs - (Date.now() - started);
    const client = new pg.Client({
      ...(typeof options.url === "string" ? { connectionString: options.url } : options.url),
      application_name: options.applicationName,
      // A URL with its own `options` parameter wins over this one (pg reads the URL last).
      ...(startupOptions ? { options: startupOptions } : {}),
      // Each attempt gets at most what is left of --connect-timeout, so a server that never
      // answers cannot stretch the bound by a whole attempt.
      connectionTimeoutMillis: Math.max(1000, Math.min(5000, remaining)),
    });
    try {
      await client.connect();
      // A dropped connection surfaces as a failed query; the listeners keep it from crashing the
      // process and remember it, so the failure is reported as a lost connection, not a bad migration.
      client.on("error", () => lost.add(client));
      client.on("end", () => lost.add(client));
      return client;
    } catch (error) {
      await client.end().catch(() => {});
      if (startupOptions && refusedStartupOptions(error)) {
        startupOptions = undefined;
        attempt--;
        continue;
      }
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

function startupOptionsOf(settings: Record<string, string | number> | undefined): string | undefined {
  const entries = Object.entries(settings ?? {});
  // Names and values are ours (identifiers and integers): nothing to escape in `-c name=value`.
  return entries.length ? entries.map(([name, value]) => `-c ${name}=${value}`).join(" ") : undefined;
}

// 08P01: PgBouncer's "unsupported startup parameter: options"; 42704: a setting this PostgreSQL
// does not know (client_connection_check_interval before 14); 22023: a value it refuses.
function refusedStartupOptions(error: unknown): boolean {
  const { code, message } = (error ?? {}) as { code?: string; message?: string };
  return code === "08P01" || code === "42704" || code === "22023" || /startup parameter/i.test(String(message));
}

const lost = new WeakSet<pg.Client>();

// SQLSTATE class 08 (connection exception), 57P01 admin_shutdown (pg_terminate_backend, a fast
// shutdown), 57P02 crash_shutdown, 57P03 cannot_connect_now.
const lostCodes = /^(08...|57P0[123]|ECONNRESET|EPIPE|ETIMEDOUT)$/;

/**
 * Whether `error` (or what caused it) means the session is gone: the server ended it or the
 * socket closed. Such a run is retryable: what its open transaction held was rolled back.
 */
export function isConnectionLost(error: unknown, client?: pg.Client): boolean {
  if (client && lost.has(client)) return true;
  for (let e = error as { code?: unknown; message?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 5; depth++) {
    if (typeof e.code === "string" && lostCodes.test(e.code)) return true;
    if (/Connection terminated|not queryable|connection error/i.test(String(e.message))) return true;
    e = e.cause as typeof e;
  }
  return false;
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

/**
 * Where a library function works: a URL it connects to (and disconnects from) itself, or a
 * connected `pg.Client` the caller owns, which is used as it is and never ended. Exactly one.
 */
export interface DatabaseTarget {
  databaseUrl?: string;
  /** A connected client, not inside a transaction; it stays the caller's to end. */
  client?: pg.Client;
}

/** The connection a function works on, and how to let go of it: ends only what it opened. */
export interface Opened {
  client: pg.Client;
  /** Whether the caller passed `client` (a session of theirs: leave it as it was found). */
  borrowed: boolean;
  release(): Promise<void>;
}

/**
 * Connects to `target.databaseUrl`, or borrows `target.client`, watching it for a lost
 * connection while it is ours to use.
 *
 * @example const db = await openDatabase(options, { applicationName: "yomu-migrate status", timeoutMs, onEvent });
 */
export async function openDatabase(target: DatabaseTarget, options: Omit<ConnectOptions, "url">): Promise<Opened> {
  const borrowed = borrowedClient(target);
  if (!borrowed) {
    const client = await connect({ ...options, url: target.databaseUrl as string });
    return { client, borrowed: false, release: () => client.end().catch(() => {}) };
  }
  const onLost = () => lost.add(borrowed);
  borrowed.on("error", onLost);
  borrowed.on("end", onLost);
  return {
    client: borrowed,
    borrowed: true,
    release: async () => {
      borrowed.off("error", onLost);
      borrowed.off("end", onLost);
    },
  };
}

/** The caller's client, or undefined for a URL; refuses neither or both. */
export function borrowedClient(target: DatabaseTarget): pg.Client | undefined {
  if ((target.client === undefined) === (target.databaseUrl === undefined)) {
    throw new MigratorError("CONFIG_INVALID", "pass exactly one of databaseUrl and client");
  }
  return target.client;
}

/**
 * How a second connection reaches the same database (the progress watcher, the pooler probe, a
 * cancel): the URL, or the borrowed client's own parameters.
 */
export function secondConnection(target: DatabaseTarget): pg.ClientConfig {
  const client = borrowedClient(target);
  if (!client) return { connectionString: target.databaseUrl };
  const { host, port, user, database, password, ssl } = client as unknown as Pick<
    pg.ClientConfig,
    "host" | "port" | "user" | "database" | "password" | "ssl"
  >;
  return { host, port, user, database, password, ssl };
}

/** The target as it may be logged: host, port and database, never a password. */
export function describeTarget(target: DatabaseTarget): string {
  const client = borrowedClient(target);
  return client ? describeConfig(client) : describeDatabase(target.databaseUrl as string);
}

function describeConfig(config: Pick<pg.ClientConfig, "host" | "port" | "database">): string {
  return `${config.host ?? "localhost"}${config.port ? `:${config.port}` : ""}/${config.database ?? "(default)"}`;
}

/**
 * A URL for another database on the borrowed client's server (the plan's scratch copy), when its
 * parameters fit one: a password given as a function, or TLS settings, need `shadowDatabaseUrl`.
 */
export function urlOf(client: pg.Client): string {
  const { host, port, user, database, password, ssl } = client as unknown as pg.ClientConfig;
  if (ssl || (password != null && typeof password !== "string")) {
    throw new MigratorError(
      "CONFIG_INVALID",
      "a client with TLS settings or a password function needs shadowDatabaseUrl for the scratch copy",
      {
        hint: "pass shadowDatabaseUrl naming an empty database, or databaseUrl instead of client",
      },
    );
  }
  const url = new URL("postgres://localhost");
  url.hostname = host?.startsWith("/") ? encodeURIComponent(host) : (host ?? "localhost");
  if (port) url.port = String(port);
  if (user) url.username = encodeURIComponent(user);
  if (password) url.password = encodeURIComponent(password);
  url.pathname = `/${encodeURIComponent(database ?? "")}`;
  return url.toString();
}
