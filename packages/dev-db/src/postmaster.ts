import { readFileSync, readlinkSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { EmbeddedPostgresError } from "./errors.js";

/** Marks the supervisor's command line, so a later run can tell a supervised server from an orphan. */
export const SUPERVISOR_MARK = "yomu-dev-db-supervisor";

/** Who holds a data folder, read from PostgreSQL's own lock file `postmaster.pid`. */
export type Holder =
  | { kind: "none" }
  /** A server from our binaries whose supervisor is gone (its parent was `kill -9`ed). */
  | { kind: "orphan"; pid: number }
  /** A server from our binaries that a live supervisor still runs: another `pnpm start` or test run. */
  | { kind: "supervised"; pid: number; supervisor: number }
  /** A live process we did not start. */
  | { kind: "foreign"; pid: number; command: string };

/**
 * Reads `postmaster.pid` in `dataDir` and says who holds the folder. A dead pid counts as
 * `none`: PostgreSQL itself replaces a stale lock file.
 *
 * @example
 *   const holder = await dataFolderHolder(".data/postgres", "/var/cache/yomu-dev-db/postgres-15.18.0/bin/postgres");
 */
export async function dataFolderHolder(dataDir: string, postgresBinary: string): Promise<Holder> {
  const text = await readFile(join(dataDir, "postmaster.pid"), "utf8").catch(() => "");
  const pid = Number(text.split("\n")[0]);
  if (!Number.isInteger(pid) || pid <= 0 || !alive(pid)) return { kind: "none" };
  const exe = safe(() => readlinkSync(`/proc/${pid}/exe`).replace(/ \(deleted\)$/, ""));
  if (exe !== postgresBinary) return { kind: "foreign", pid, command: commandOf(pid) || exe || "unknown" };
  const parent = parentOf(pid);
  if (parent && parent > 1 && commandOf(parent).includes(SUPERVISOR_MARK)) return { kind: "supervised", pid, supervisor: parent };
  return { kind: "orphan", pid };
}

/**
 * Makes the data folder free for a new server: stops an orphan, refuses a live holder with a line
 * that names it.
 *
 * @example
 *   await claimDataFolder(dataDir, binaries.postgres, (line) => console.log(line));
 */
export async function claimDataFolder(dataDir: string, postgresBinary: string, onLog: (line: string) => void): Promise<void> {
  const holder = await dataFolderHolder(dataDir, postgresBinary);
  if (holder.kind === "none") return;
  if (holder.kind === "supervised") {
    throw new EmbeddedPostgresError(
      "DATA_DIR_IN_USE",
      `data folder ${dataDir} is in use by pid ${holder.pid} (the embedded PostgreSQL of another run, pid ${holder.supervisor}); stop that run first, or set DATABASE_URL`,
    );
  }
  if (holder.kind === "foreign") {
    throw new EmbeddedPostgresError(
      "DATA_DIR_IN_USE",
      `data folder ${dataDir} is in use by pid ${holder.pid} (${holder.command}); stop that process, or if it is no PostgreSQL, delete ${join(dataDir, "postmaster.pid")}`,
    );
  }
  onLog(`stopping the orphaned embedded PostgreSQL (pid ${holder.pid}) an earlier run left in ${dataDir}`);
  // SIGINT is PostgreSQL's fast shutdown: sessions end, the cluster stays consistent.
  await stopPid(holder.pid);
}

/**
 * SIGINT, then SIGQUIT after 30s, until the process is gone: `exited` for a child of ours (whose
 * pid stays alive as a zombie until reaped), the pid itself for anyone else's.
 *
 * @example
 *   await stopPid(orphan.pid);
 */
export async function stopPid(pid: number, exited?: Promise<void>): Promise<void> {
  let gone = false;
  void exited?.then(() => {
    gone = true;
  });
  signal(pid, "SIGINT");
  for (let waited = 0; exited ? !gone : alive(pid); waited += 100) {
    if (waited === 30_000) signal(pid, "SIGQUIT");
    if (waited >= 60_000) throw new EmbeddedPostgresError("START_FAILED", `PostgreSQL pid ${pid} did not stop within 60s`);
    await sleep(100);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {}
}

function commandOf(pid: number): string {
  return safe(() => readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ").trim()) ?? "";
}

function parentOf(pid: number): number | undefined {
  // The command name in field 2 may hold spaces and parentheses; the fields after its last ")" do not.
  const stat = safe(() => readFileSync(`/proc/${pid}/stat`, "utf8"));
  const ppid = stat ? Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) : Number.NaN;
  return Number.isInteger(ppid) ? ppid : undefined;
}

function safe<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch {
    return undefined;
  }
}
