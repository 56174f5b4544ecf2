import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../support/database.js";
import { freePort } from "../support/net.js";

// Every shell block in the README and the quickstart runs here, against a fresh database, so a
// renamed flag, script or file breaks the build before it misleads a reader. A block that cannot
// run here says why in a `<!-- doc-test: skip <reason> -->` comment right above it.
const repo = fileURLToPath(new URL("../../", import.meta.url));
const documents = ["README.md", "specs/114-drizzle-kit-k8s-migration/quickstart.md"];

interface Block {
  document: string;
  line: number;
  code: string;
  /** The marker above the block: `skip <reason>`, `server`, or the README's command names. */
  marker: string | undefined;
}

function shellBlocks(document: string): Block[] {
  const lines = readFileSync(join(repo, document), "utf8").split("\n");
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]?.trim() !== "```sh") continue;
    const start = i;
    const code: string[] = [];
    while (lines[++i]?.trim() !== "```" && i < lines.length) code.push((lines[i] ?? "").trim());
    let j = start - 1;
    while (j >= 0 && lines[j]?.trim() === "") j--;
    const comment = /^<!--\s*(.*?)\s*-->$/.exec(lines[j]?.trim() ?? "");
    blocks.push({ document, line: start + 1, code: code.join("\n"), marker: comment?.[1] });
  }
  return blocks;
}

const blocks = documents.flatMap(shellBlocks);
const runnable = blocks.filter((b) => b.marker === undefined || b.marker === "doc-test: server" || /^doc-test: exit \d+$/.test(b.marker));

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase("docs");
});
afterAll(() => db.drop());

function sh(code: string) {
  return spawnSync("bash", ["-euo", "pipefail", "-c", code], {
    cwd: repo,
    env: { ...process.env, DATABASE_URL: db.url, LOG_FORMAT: "json" },
    encoding: "utf8",
    timeout: 120_000,
  });
}

describe("the documents' shell blocks", () => {
  it("are found, and every one not run here says why", () => {
    expect(runnable.length).toBeGreaterThanOrEqual(5);
    for (const block of blocks.filter((b) => !runnable.includes(b))) {
      const where = `${block.document}:${block.line}`;
      expect(block.marker, where).toMatch(/^(doc-test: skip \S.{8,}|main-command|test-command)$/);
    }
  });

  it("the README's main and test commands are the ones .ci/run runs", () => {
    const ci = readFileSync(join(repo, ".ci/run"), "utf8");
    expect(ci).toContain("readme_block test-command");
    expect(ci).toContain("readme_block main-command");
    expect(blocks.filter((b) => b.marker === "main-command" || b.marker === "test-command")).toHaveLength(2);
  });

  for (const block of runnable.filter((b) => b.marker === undefined || b.marker.startsWith("doc-test: exit"))) {
    const expected = Number(/exit (\d+)/.exec(block.marker ?? "")?.[1] ?? 0);
    it(`${block.document}:${block.line} exits ${expected}: ${block.code.split("\n")[0]}`, () => {
      const run = sh(block.code);
      expect(run.status, `${run.stdout}\n${run.stderr}`).toBe(expected);
    });
  }

  for (const block of runnable.filter((b) => b.marker === "doc-test: server")) {
    it(`${block.document}:${block.line} runs against the API on :3000: ${block.code.split("\n")[0]}`, async () => {
      expect(sh("node apps/api/dist/shared/db/migrate.js").status).toBe(0);
      // The document says :3000; a port of our own, so a second checkout testing at once never meets this one.
      expect(block.code).toContain("localhost:3000");
      const port = await freePort();
      const server = await startApi(port);
      try {
        const run = sh(block.code.replaceAll("localhost:3000", `localhost:${port}`));
        expect(run.status, `${run.stdout}\n${run.stderr}`).toBe(0);
        expect(run.stdout).toContain('"status":"ready"');
        expect(run.stdout).toContain('"email":"ada@example.com"');
      } finally {
        server.kill("SIGTERM");
        await new Promise((done) => server.once("exit", done));
      }
    });
  }
});

async function startApi(port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, ["apps/api/dist/main.js"], {
    cwd: repo,
    env: { ...process.env, DATABASE_URL: db.url, PORT: String(port) },
    stdio: "ignore",
  });
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) return child;
    } catch {}
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill();
  throw new Error(`the API did not start on :${port}`);
}
