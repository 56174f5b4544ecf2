import { createServer } from "node:net";
import { type ServerType, serve } from "@hono/node-server";
import { describeDatabase } from "@yomu/migrator";
import type { Logger } from "@yomu/migrator/log";
import { createApp } from "./app.js";
import { createDatabase } from "./shared/db/client.js";
import { createReadinessCheck } from "./shared/readiness.js";

export interface ServerOptions {
  databaseUrl: string;
  port: number;
  migrationsDir: string;
  log: Logger;
  /** How long in-flight requests get after SIGTERM before the process gives up on them. */
  shutdownGraceMs?: number;
}

export interface RunningServer {
  port: number;
  close(): Promise<void>;
}

/** Why the API could not listen, as one line that names the port and the fix. */
export class ServerStartError extends Error {
  constructor(
    readonly code: "PORT_IN_USE" | "LISTEN_FAILED",
    message: string,
  ) {
    super(message);
    this.name = "ServerStartError";
  }
}

const HOSTNAME = "0.0.0.0";

/**
 * Serves the API until `close()`: stops accepting, lets in-flight requests finish, ends the pool.
 * A port it cannot listen on rejects with a `ServerStartError`.
 *
 * @example
 *   const server = await startServer({ databaseUrl, port: 3000, migrationsDir: "drizzle/migrations", log });
 *   await server.close();
 */
export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const database = createDatabase(options.databaseUrl);
  const app = createApp({ db: database.db, checkReady: createReadinessCheck(database.pool, options.migrationsDir), log: options.log });
  const server = await new Promise<ServerType>((ready, fail) => {
    const s = serve({ fetch: app.fetch, port: options.port, hostname: HOSTNAME }, () => ready(s));
    s.once("error", (error: NodeJS.ErrnoException) => fail(listenError(options.port, error)));
  }).catch(async (error: unknown) => {
    await database.close();
    throw error;
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : options.port;
  options.log({
    event: "server.started",
    severity: "INFO",
    message: `listening on :${port}, database ${describeDatabase(options.databaseUrl)}`,
    port,
    database: describeDatabase(options.databaseUrl),
  });

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      const grace = setTimeout(
        () => (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.(),
        options.shutdownGraceMs ?? 10_000,
      );
      const closed = new Promise<void>((done) => server.close(() => done()));
      (server as unknown as { closeIdleConnections?: () => void }).closeIdleConnections?.();
      await closed;
      clearTimeout(grace);
      await database.close();
      options.log({ event: "server.stopped", severity: "INFO", message: "server stopped; in-flight requests finished, pool closed" });
    })();
    return closing;
  };
  return { port, close };
}

/**
 * Resolves when nothing listens on `port` (the API's host), so a taken port is reported before
 * minutes of start-up rather than after them.
 *
 * @example
 *   await ensurePortFree(3000); // throws ServerStartError PORT_IN_USE when something listens there
 */
export function ensurePortFree(port: number): Promise<void> {
  return new Promise((done, fail) => {
    const probe = createServer();
    probe.once("error", (error: NodeJS.ErrnoException) => fail(listenError(port, error)));
    probe.listen(port, HOSTNAME, () => probe.close(() => done()));
  });
}

function listenError(port: number, error: NodeJS.ErrnoException): ServerStartError {
  if (error.code === "EADDRINUSE") {
    return new ServerStartError("PORT_IN_USE", `port ${port} is taken; stop what listens there, or set PORT to a free port`);
  }
  return new ServerStartError("LISTEN_FAILED", `cannot listen on port ${port} (${error.code ?? error.message}); set PORT to another port`);
}

/** Closes `stop` on the first SIGTERM or SIGINT; a second one exits at once. */
export function onShutdownSignal(stop: () => Promise<void>): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) process.exit(130);
    stopping = true;
    stop().then(
      () => {
        process.exitCode = 0;
      },
      (error) => {
        process.stderr.write(`shutdown after ${signal} failed: ${String(error)}\n`);
        process.exitCode = 1;
      },
    );
  };
  process.on("SIGTERM", handler);
  process.on("SIGINT", handler);
}
