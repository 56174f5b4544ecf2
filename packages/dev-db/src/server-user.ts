import { execFileSync } from "node:child_process";
import { stat } from "node:fs/promises";
import { dirname } from "node:path";
import { EmbeddedPostgresError } from "./errors.js";

/** The account PostgreSQL runs as when we are root (it refuses to run as root itself). */
export interface ServerUser {
  name: string;
  uid: number;
  gid: number;
}

const NAME = "postgres";

/**
 * The `postgres` account when this process is root (created if missing, as Debian's package would),
 * `undefined` otherwise: then the server runs as whoever we are.
 *
 * @example
 *   const user = serverUser(); // { name: "postgres", uid: 101, gid: 104 } as root
 */
export function serverUser(): ServerUser | undefined {
  if (process.getuid?.() !== 0) return undefined;
  if (lookup() === undefined) create();
  const ids = lookup();
  if (!ids) throw new EmbeddedPostgresError("START_FAILED", `could not create the ${NAME} user the embedded PostgreSQL runs as under root`);
  return { name: NAME, ...ids };
}

function lookup(): { uid: number; gid: number } | undefined {
  try {
    const id = (flag: string) => Number(execFileSync("id", [flag, NAME], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim());
    return { uid: id("-u"), gid: id("-g") };
  } catch {
    return undefined;
  }
}

function create(): void {
  const groupExists = spawnOk("getent", ["group", NAME]);
  const args = ["--system", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin"];
  if (!spawnOk("useradd", [...args, ...(groupExists ? ["-g", NAME] : ["--user-group"]), NAME])) {
    throw new EmbeddedPostgresError(
      "START_FAILED",
      `as root the embedded PostgreSQL runs as the user ${NAME}, and useradd could not create it; create it yourself (useradd --system ${NAME})`,
    );
  }
}

function spawnOk(command: string, args: string[]): boolean {
  try {
    execFileSync(command, args, { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/**
 * Whether `user` can reach `path`: every folder above it lets them through. Checked by mode bits,
 * since an `access()` check would answer for root, not for them.
 *
 * @example
 *   await userCanReach(user, "/root/yomu/.data/postgres"); // false: /root is 0700
 */
export async function userCanReach(user: ServerUser, path: string): Promise<boolean> {
  for (let folder = dirname(path); ; folder = dirname(folder)) {
    const info = await stat(folder).catch(() => undefined);
    if (info) {
      const bit = info.uid === user.uid ? 0o100 : info.gid === user.gid ? 0o010 : 0o001;
      if ((info.mode & bit) === 0) return false;
    }
    if (folder === dirname(folder)) return true;
  }
}
