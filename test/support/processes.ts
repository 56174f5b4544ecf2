import { readFileSync } from "node:fs";
import { join } from "node:path";

/** Whether a process with this pid exists (a zombie counts: it still holds its pid). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The pid PostgreSQL wrote into its data folder's lock file. */
export function postmasterPid(dataDir: string): number {
  return Number(readFileSync(join(dataDir, "postmaster.pid"), "utf8").split("\n")[0]);
}
