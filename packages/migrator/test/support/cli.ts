import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import pg from "pg";
import type { EventName, EventOf } from "../../src/events.js";
import { MIGRATION_LOCK_KEY } from "../../src/lock.js";

/** The compiled CLI, as the Kubernetes Job runs it (`pnpm build` first). */
export const CLI = fileURLToPath(new URL("../../bin/yomu-migrate.js", import.meta.url));

export interface LogLine {
  time: string;
  severity: string;
  message: string;
  event: string;
  [field: string]: unknown;
}

/** A printed line of a known event: its fields typed by the migrator's own `MigratorEvent`. */
export type EventLine<K extends EventName> = LogLine & EventOf<K>;

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Every stdout line that parsed as a JSON log line. */
  events: LogLine[];
  /** Stdout lines that were not JSON objects: the contract allows none in JSON mode. */
  otherLines: string[];
}

export interface RunningCli {
  child: ChildProcess;
  /** Events seen so far; grows while the process runs. */
  events: LogLine[];
  /** Resolves with the first event named `event` (matching `where`), rejects if the process ends first. */
  waitFor<K extends EventName>(event: K, where?: (line: EventLine<K>) => boolean): Promise<EventLine<K>>;
  waitFor(event: string, where?: (line: LogLine) => boolean): Promise<LogLine>;
  done: Promise<CliRun>;
}

/**
 * Starts `yomu-migrate` as its own OS process with only the environment given (plus PATH), so
 * nothing from the test runner's environment leaks into its configuration.
 */
export function startCli(args: string[], env: Record<string, string | undefined> = {}, options: { cwd?: string } = {}): RunningCli {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: options.cwd,
    env: { PATH: process.env.PATH, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const events: LogLine[] = [];
  const otherLines: string[] = [];
  const waiters: Array<{ event: string; where: (line: LogLine) => boolean; resolve: (line: LogLine) => void }> = [];
  let stdout = "";
  let stderr = "";
  let partial = "";
  child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
    stdout += chunk;
    partial += chunk;
    const lines = partial.split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) take(line);
  });
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk;
  });
  function take(line: string) {
    if (line.trim() === "") return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      otherLines.push(line);
      return;
    }
    if (!parsed || typeof parsed !== "object" || typeof (parsed as LogLine).event !== "string") {
      otherLines.push(line);
      return;
    }
    const entry = parsed as LogLine;
    events.push(entry);
    for (const waiter of [...waiters]) {
      if (waiter.event === entry.event && waiter.where(entry)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(entry);
      }
    }
  }
  const done = new Promise<CliRun>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code, signal) => {
      if (partial) take(partial);
      resolve({ code, signal, stdout, stderr, events, otherLines });
    });
  });
  return {
    child,
    events,
    done,
    waitFor: ((event: string, where: (line: LogLine) => boolean = () => true): Promise<LogLine> => {
      const seen = events.find((e) => e.event === event && where(e));
      if (seen) return Promise.resolve(seen);
      return new Promise<LogLine>((resolve, reject) => {
        waiters.push({ event, where, resolve });
        done.then(
          (run) => reject(new Error(`yomu-migrate exited (${run.code ?? run.signal}) before logging ${event}\n${run.stdout}${run.stderr}`)),
          reject,
        );
      });
    }) as RunningCli["waitFor"],
  };
}

/** Runs `yomu-migrate` to completion; `cwd` for what resolves from the working directory (git, .squawk.toml). */
export function runCli(args: string[], env: Record<string, string | undefined> = {}, options: { cwd?: string } = {}): Promise<CliRun> {
  return startCli(args, env, options).done;
}

export function eventsNamed<K extends EventName>(run: { events: LogLine[] }, event: K): Array<EventLine<K>>;
export function eventsNamed(run: { events: LogLine[] }, event: string): LogLine[];
export function eventsNamed(run: { events: LogLine[] }, event: string): LogLine[] {
  return run.events.filter((e) => e.event === event);
}

/** The single `event` line of a run; fails the test when there is none or more than one. */
export function only<K extends EventName>(run: { events: LogLine[] }, event: K): EventLine<K>;
export function only(run: { events: LogLine[] }, event: string): LogLine;
export function only(run: { events: LogLine[] }, event: string): LogLine {
  const found = eventsNamed(run, event);
  if (found.length !== 1) {
    throw new Error(`expected one ${event} event, got ${found.length}:\n${run.events.map((e) => JSON.stringify(e)).join("\n")}`);
  }
  return found[0] as LogLine;
}

/** What drizzle has recorded, oldest first. */
export async function drizzleRows(url: string): Promise<Array<{ hash: string; created_at: string }>> {
  return withClient(url, async (client) => {
    const { rows } = await client.query<{ present: boolean }>("SELECT to_regclass('drizzle.__drizzle_migrations') IS NOT NULL AS present");
    if (!rows[0]?.present) return [];
    const result = await client.query<{ hash: string; created_at: string }>(
      "SELECT hash, created_at::text AS created_at FROM drizzle.__drizzle_migrations ORDER BY id",
    );
    return result.rows;
  });
}

export async function tableExists(url: string, name: string): Promise<boolean> {
  return withClient(url, async (client) => {
    const { rows } = await client.query<{ present: boolean }>("SELECT to_regclass($1) IS NOT NULL AS present", [name]);
    return rows[0]?.present ?? false;
  });
}

export async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, application_name: "yomu-migrator-test" });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Polls `check` until it returns a value other than undefined; fails after `timeoutMs`. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The migration lock's holder pid in the database at `url`, if any. */
export async function lockHolderPid(url: string): Promise<number | undefined> {
  return withClient(url, async (client) => {
    const { rows } = await client.query<{ pid: number }>(
      `SELECT pid FROM pg_locks
        WHERE locktype = 'advisory' AND granted AND classid = $1 AND objid = $2 AND objsubid = 2
          AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
      [MIGRATION_LOCK_KEY.classId, MIGRATION_LOCK_KEY.objId],
    );
    return rows[0]?.pid;
  });
}

/** Takes the runners' advisory lock on `client`, as another migrating tool must. */
export async function takeMigrationLock(client: pg.Client): Promise<void> {
  await client.query("SELECT pg_advisory_lock($1, $2)", [MIGRATION_LOCK_KEY.classId, MIGRATION_LOCK_KEY.objId]);
}

export async function releaseMigrationLock(client: pg.Client): Promise<void> {
  await client.query("SELECT pg_advisory_unlock($1, $2)", [MIGRATION_LOCK_KEY.classId, MIGRATION_LOCK_KEY.objId]);
}
