// Issue 17: @yomu/migrator installs from its `npm pack` tarball into a plain npm project outside
// the monorepo (no workspace, nothing but a drizzle-kit folder), and there the CLI and the
// library work against a real database. The registry is reached for the dependencies, so this
// proves they are the package's own, not borrowed from the monorepo's node_modules.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../../test/support/database.js";

const pkgDir = fileURLToPath(new URL("..", import.meta.url));
const project = mkdtempSync(join(tmpdir(), "yomu-consumer-"));
let db: TestDatabase;
let tarball: string;

// drizzle-kit 0.31's layout, as `drizzle-kit generate` leaves it with its default `out: "drizzle"`.
const migrations = [
  { tag: "0000_brave_start", when: 1767605400000, sql: ['CREATE TABLE "notes" ("id" serial PRIMARY KEY NOT NULL, "body" text NOT NULL);'] },
  // Not CONCURRENTLY: squawk, which lint runs, must be installed with the package to flag it.
  { tag: "0001_quiet_index", when: 1767605460000, sql: ['CREATE INDEX "notes_body_idx" ON "notes" USING btree ("body");'] },
];

/**
 * The commands run in order, each with the exit code the contract gives it at that point. Adding
 * a command is one line here.
 */
const commands: Array<{ args: string[]; exit: number; output?: RegExp }> = [
  { args: ["status", "--require-current"], exit: 5 },
  { args: ["lint", "drizzle/0001_quiet_index.sql"], exit: 6, output: /require-concurrent-index-creation/ },
  { args: ["plan", "--json"], exit: 0, output: /"migrations":\[\{"tag":"[^"]+","statements":\[\{"index":1/ },
  { args: ["up"], exit: 0, output: /"event":"migration.run.finished".*"status":"applied"/ },
  { args: ["up"], exit: 0, output: /"status":"noop"/ },
  { args: ["status", "--require-current"], exit: 0 },
  { args: ["verify"], exit: 0, output: /"clean":true/ },
  { args: ["lint"], exit: 0 },
];

beforeAll(async () => {
  db = await createTestDatabase("npm_pack");
  const packed = execFileSync("npm", ["pack", "--json", "--pack-destination", project], { cwd: pkgDir, encoding: "utf8", env: npmEnv() });
  tarball = join(project, (JSON.parse(packed) as Array<{ filename: string }>)[0]?.filename as string);
  writeFileSync(join(project, "package.json"), `${JSON.stringify({ name: "consumer", private: true, type: "module" }, null, 2)}\n`);
  mkdirSync(join(project, "drizzle", "meta"), { recursive: true });
  const entries = migrations.map((m, idx) => ({ idx, version: "7", when: m.when, tag: m.tag, breakpoints: true }));
  writeFileSync(
    join(project, "drizzle", "meta", "_journal.json"),
    JSON.stringify({ version: "7", dialect: "postgresql", entries }, null, 2),
  );
  for (const m of migrations) writeFileSync(join(project, "drizzle", `${m.tag}.sql`), `${m.sql.join("\n--> statement-breakpoint\n")}\n`);
  execFileSync("npm", ["install", "--no-audit", "--no-fund", "--loglevel=error", tarball], {
    cwd: project,
    encoding: "utf8",
    env: npmEnv(),
  });
}, 300_000);

afterAll(async () => {
  await db?.drop();
  rmSync(project, { recursive: true, force: true });
});

/** Only what a team's shell would have: no workspace, no NODE_PATH, nothing from the test runner. */
function npmEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, HOME: process.env.HOME, ...extra };
}

describe("npm pack of @yomu/migrator, installed in a plain npm project", () => {
  it("ships the compiled library, the CLI, its bundle and the README, and no sources, tests or maps", () => {
    const files = execFileSync("tar", ["tzf", tarball], { encoding: "utf8" }).split("\n").filter(Boolean);
    for (const f of [
      "package.json",
      "README.md",
      "bin/yomu-migrate.js",
      "dist/index.js",
      "dist/index.d.ts",
      "dist/cli.js",
      "dist/yomu-migrate.mjs",
    ]) {
      expect(files).toContain(`package/${f}`);
    }
    expect(files.filter((f) => /^package\/(src|test)\//.test(f) || f.endsWith(".map") || f.includes(".test."))).toEqual([]);
  });

  it("`npx yomu-migrate` runs each command against a real database, with the contract's exit codes", () => {
    for (const command of commands) {
      const run = spawnSync("npx", ["--no", "yomu-migrate", ...command.args], {
        cwd: project,
        encoding: "utf8",
        env: npmEnv({ DATABASE_URL: db.url, MIGRATIONS_DIR: "drizzle", LOG_FORMAT: "json" }),
      });
      const said = `yomu-migrate ${command.args.join(" ")} exited ${run.status}:\n${run.stdout}${run.stderr}`;
      expect(run.status, said).toBe(command.exit);
      if (command.output) expect(run.stdout, said).toMatch(command.output);
    }
  }, 120_000);

  it("the bundled file the README's Job snippet runs works there too", () => {
    const run = spawnSync(process.execPath, ["node_modules/@yomu/migrator/dist/yomu-migrate.mjs", "status", "--require-current"], {
      cwd: project,
      encoding: "utf8",
      env: npmEnv({ DATABASE_URL: db.url, MIGRATIONS_DIR: "drizzle", LOG_FORMAT: "json" }),
    });
    expect(run.status, run.stdout + run.stderr).toBe(0);
  });

  it("its types resolve there under strict TypeScript, the subpaths' included (pg's types come with it)", () => {
    writeFileSync(
      join(project, "consumer.ts"),
      `import { type MigratorEvent, MigratorError, type RunResult, runMigrations } from "@yomu/migrator";
import { runCli } from "@yomu/migrator/cli";
import { createLogger } from "@yomu/migrator/log";

declare const databaseUrl: string;
const result: RunResult = await runMigrations({ databaseUrl, dir: "drizzle", onEvent: (e: MigratorEvent) => void e.event });
export const code: number = result.error instanceof MigratorError ? result.error.exitCode : 0;
export const cli: Promise<number> = runCli(["status"], {});
createLogger({ format: "json", write: () => {} });
`,
    );
    // The monorepo's compiler, but every type it reads comes from the project's node_modules.
    const tsc = join(pkgDir, "../../node_modules/typescript/bin/tsc");
    const args = ["--noEmit", "--strict", "--module", "nodenext", "--moduleResolution", "nodenext", "--target", "es2022", "consumer.ts"];
    const run = spawnSync(process.execPath, [tsc, ...args], { cwd: project, encoding: "utf8", env: npmEnv() });
    expect(run.stdout + run.stderr).toBe("");
    expect(run.status).toBe(0);
  }, 120_000);

  it("the library is importable there and reads the same state in process", () => {
    const script = `import { readStatus } from "@yomu/migrator";
const s = await readStatus({ databaseUrl: process.env.DATABASE_URL, dir: "drizzle" });
process.stdout.write(JSON.stringify({ current: s.current, schemaVersion: s.schemaVersion }));`;
    const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], {
      cwd: project,
      encoding: "utf8",
      env: npmEnv({ DATABASE_URL: db.url }),
    });
    expect(JSON.parse(out)).toEqual({ current: true, schemaVersion: "0001_quiet_index" });
  });
});
