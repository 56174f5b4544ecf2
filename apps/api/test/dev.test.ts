// `pnpm start`'s entry (dist/dev.js) as a person runs it, as its own process on a real embedded
// PostgreSQL. Regression for issue 12: a taken port died with an EADDRINUSE stack trace after
// migrating; a second start or one after `kill -9` failed with an opaque "[cause]: undefined".
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, describe, expect, it } from "vitest";
import { freePort } from "../../../test/support/net.js";
import { alive, postmasterPid } from "../../../test/support/processes.js";

const entry = new URL("../dist/dev.js", import.meta.url).pathname;
const folders: string[] = [];
const children: ChildProcess[] = [];
afterAll(() => {
  for (const child of children) child.kill("SIGKILL");
  for (const folder of folders) rmSync(folder, { recursive: true, force: true });
});

function dataFolder(): string {
  const made = mkdtempSync(join(tmpdir(), "yomu-dev-test-"));
  // Open, so that as root the server's own user works in it directly.
  chmodSync(made, 0o755);
  folders.push(made);
  return join(made, "postgres");
}

interface Dev {
  child: ChildProcess;
  port: number;
  output: () => string;
  exit: Promise<number | null>;
}

async function startDev(dataDir: string, port?: number): Promise<Dev> {
  const apiPort = port ?? (await freePort());
  const { DATABASE_URL: _none, ...inherited } = process.env;
  const env = { ...inherited, PORT: String(apiPort), EMBEDDED_PG_DATA: dataDir, LOG_FORMAT: "json" };
  const child = spawn(process.execPath, [entry], { env, stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  let output = "";
  child.stdout?.on("data", (chunk) => (output += chunk));
  child.stderr?.on("data", (chunk) => (output += chunk));
  const exit = once(child, "exit").then(([code]) => code as number | null);
  return { child, port: apiPort, output: () => output, exit };
}

async function untilReady(dev: Dev): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (dev.child.exitCode !== null) throw new Error(`dev.js exited ${dev.child.exitCode}: ${dev.output()}`);
    try {
      if ((await fetch(`http://127.0.0.1:${dev.port}/readyz`)).status === 200) return;
    } catch {}
    await sleep(100);
  }
  throw new Error(`/readyz never answered 200: ${dev.output()}`);
}

const events = (dev: Dev) =>
  dev
    .output()
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as { event: string; message: string });

/** The one line a failure prints: one JSON event, nothing that looks like a stack. */
function onlyFailure(dev: Dev): string {
  expect(dev.output()).not.toMatch(/^\s+at /m);
  const failed = events(dev).filter((e) => e.event === "dev.failed");
  expect(failed).toHaveLength(1);
  return failed[0]?.message ?? "";
}

describe("pnpm start's entry, dist/dev.js", () => {
  it("serves until Ctrl-C, then stops the API and the embedded server and exits 0", async () => {
    const dataDir = dataFolder();
    const dev = await startDev(dataDir);
    await untilReady(dev);
    const postgres = postmasterPid(dataDir);
    dev.child.kill("SIGINT");
    expect(await dev.exit).toBe(0);
    expect(events(dev).map((e) => e.event)).toContain("server.stopped");
    expect(alive(postgres)).toBe(false);
  });

  it("names a taken port in one line, exits 2, and starts no database", async () => {
    const blocker = createServer();
    const port = await freePort();
    await new Promise<void>((done) => blocker.listen(port, "0.0.0.0", done));
    try {
      const dev = await startDev(dataFolder(), port);
      expect(await dev.exit).toBe(2);
      expect(onlyFailure(dev)).toBe(`port ${port} is taken; stop what listens there, or set PORT to a free port`);
      expect(events(dev).map((e) => e.event)).not.toContain("database.selected");
    } finally {
      blocker.close();
    }
  });

  it("refuses to share its data folder with a running pnpm start, in one line, exit 2", async () => {
    const dataDir = dataFolder();
    const first = await startDev(dataDir);
    await untilReady(first);
    const second = await startDev(dataDir);
    expect(await second.exit).toBe(2);
    expect(onlyFailure(second)).toMatch(new RegExp(`^data folder ${dataDir} is in use by pid ${postmasterPid(dataDir)} \\(`));
    // The first one never noticed.
    expect((await fetch(`http://127.0.0.1:${first.port}/readyz`)).status).toBe(200);
    first.child.kill("SIGINT");
    expect(await first.exit).toBe(0);
  });

  it("after a kill -9, takes its server down with it, and the next start works", async () => {
    const dataDir = dataFolder();
    const first = await startDev(dataDir);
    await untilReady(first);
    const postgres = postmasterPid(dataDir);
    first.child.kill("SIGKILL");
    await first.exit;
    for (let i = 0; i < 300 && alive(postgres); i++) await sleep(100);
    expect(alive(postgres)).toBe(false);
    const next = await startDev(dataDir);
    await untilReady(next);
    next.child.kill("SIGINT");
    expect(await next.exit).toBe(0);
  });
});
