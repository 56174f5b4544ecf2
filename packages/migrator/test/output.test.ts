import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../../test/support/database.js";
import { CLI, runCli } from "./support/cli.js";
import { MigrationsFolder } from "./support/migrations.js";

let db: TestDatabase;
const folder = new MigrationsFolder([
  { name: "create_lists", statements: ["CREATE TABLE lists (id serial PRIMARY KEY);"] },
  { name: "add_name", statements: ["ALTER TABLE lists ADD COLUMN name text;"] },
]);
beforeAll(async () => {
  db = await createTestDatabase("output");
  writeFileSync(folder.byName("add_name").file.replace(/\.sql$/, ".down.sql"), "ALTER TABLE lists DROP COLUMN name;\n");
});
afterAll(async () => {
  await db.drop();
  folder.remove();
});

describe("stdout that is not a terminal", () => {
  // lint's own output is checked with lint (test/lint.test.ts).
  it("carries only JSON lines, for every command, in success and in failure", async () => {
    const env = { DATABASE_URL: db.url, MIGRATIONS_DIR: folder.dir };
    const commands = [
      ["status"],
      ["status", "--json"],
      ["verify"],
      ["up"],
      ["up"],
      ["verify", "--json"],
      ["down", "--steps", "1"],
      ["down", "--steps", "2"],
      ["down", "--to", "20990101000000_nope"],
      ["up", "--lock-wait-timeout", "5s"],
      ["baseline", folder.byName("create_lists").file, "--check"],
    ];
    for (const args of commands) {
      const run = await runCli(args, env);
      expect(run.code, `${args.join(" ")}: ${run.stdout}${run.stderr}`).not.toBeNull();
      const lines = run.stdout.split("\n").filter((line) => line !== "");
      expect(lines.length, args.join(" ")).toBeGreaterThan(0);
      for (const line of lines) expect(() => JSON.parse(line), `${args.join(" ")}: ${line}`).not.toThrow();
      // --json prints the result object itself; everything else prints events.
      if (!args.includes("--json")) expect(run.otherLines, args.join(" ")).toEqual([]);
    }
  });
});

/** Runs the CLI on a pseudo-terminal (util-linux `script`), as a person at a shell would. */
function onTerminal(args: string[], env: Record<string, string>): string {
  const command = [process.execPath, CLI, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(" ");
  const result = spawnSync("script", ["-qec", command, "/dev/null"], {
    env: { PATH: process.env.PATH, TERM: "xterm", ...env },
    encoding: "utf8",
  });
  return result.stdout;
}

describe("a terminal", () => {
  it("gets readable, coloured lines that do not repeat the message, and no colour with NO_COLOR", async () => {
    const fresh = await createTestDatabase("output_tty");
    try {
      const env = { DATABASE_URL: fresh.url, MIGRATIONS_DIR: folder.dir };
      const coloured = onTerminal(["up"], env);
      expect(coloured).toContain("\u001b[");
      expect(coloured).not.toMatch(/^\{/m);
      // The message already names the tag and the duration: no extras repeat them.
      expect(coloured).toMatch(new RegExp(`applied ${folder.tags[0]} in \\d+ms\u001b\\[0m\r?$`, "m"));
      expect(coloured).toMatch(/applied 2 migration\(s\); schema at/);
      const plain = onTerminal(["up"], { ...env, NO_COLOR: "1" });
      expect(plain).toMatch(/nothing to apply; schema at/);
      expect(plain).not.toContain("\u001b[");
    } finally {
      await fresh.drop();
    }
  });
});
