// Small helpers shared by bench/corpus and bench/memory: a command's wall time and peak RSS, and
// one query on a short-lived connection.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";

/** Runs `command` under GNU time (/usr/bin/time): exit status, output, wall ms and peak RSS in MiB. */
export function timed(command, argv, env) {
  const dir = mkdtempSync(join(tmpdir(), "yomu-bench-time-"));
  const timeFile = join(dir, "time.txt");
  try {
    const started = performance.now();
    const child = spawnSync("/usr/bin/time", ["-f", "%M", "-o", timeFile, command, ...argv], {
      env,
      encoding: "utf8",
      maxBuffer: 512 * 1024 * 1024,
    });
    const ms = Math.round(performance.now() - started);
    const kib = existsSync(timeFile) ? Number(readFileSync(timeFile, "utf8").trim().split("\n").at(-1)) : Number.NaN;
    return { status: child.status, stdout: child.stdout ?? "", stderr: child.stderr ?? "", ms, peakMiB: Math.round(kib / 102.4) / 10 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs `fn` on a connection to `url`, closed afterwards. */
export async function withClient(url, fn) {
  const client = new pg.Client(url);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** The JSON lines a yomu-migrate run printed (its events), skipping anything else on stdout. */
export function jsonLines(stdout) {
  return stdout
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .flatMap((l) => {
      try {
        return [JSON.parse(l)];
      } catch {
        return [];
      }
    });
}
