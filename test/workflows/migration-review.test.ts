// scripts/migration-review.sh, as ci.yaml and deploy-k8s.yaml run it: against a real git history
// and a real PostgreSQL, the job summary gets the traced lock plan and the lint findings.
import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { MigrationsFolder } from "../../packages/migrator/test/support/migrations.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";
import { root } from "./workflows.js";

const script = join(root, "scripts/migration-review.sh");
const work = mkdtempSync(join(tmpdir(), "yomu-review-"));
const git = (...args: string[]) =>
  execFileSync("git", ["-C", work, "-c", "user.name=t", "-c", "user.email=t@example.com", ...args], { encoding: "utf8" }).trim();
let db: TestDatabase;
let base: string;
let folder: MigrationsFolder;

beforeAll(async () => {
  db = await createTestDatabase("review");
  folder = new MigrationsFolder([
    { name: "bookmarks", statements: ['CREATE TABLE "bookmarks" ("id" serial PRIMARY KEY, "visits" integer, "legacy" text)'] },
  ]);
  cpSync(folder.dir, join(work, "migrations"), { recursive: true });
  git("init", "-q", "-b", "main");
  git("add", ".");
  git("commit", "-qm", "base");
  base = git("rev-parse", "HEAD");
  folder.add({
    name: "reshape",
    statements: ['ALTER TABLE "bookmarks" ALTER COLUMN "visits" SET DATA TYPE bigint', 'ALTER TABLE "bookmarks" DROP COLUMN "legacy"'],
  });
  cpSync(folder.dir, join(work, "migrations"), { recursive: true });
  git("add", ".");
  git("commit", "-qm", "reshape");
});

afterAll(async () => {
  await db.drop();
  folder.remove();
  rmSync(work, { recursive: true, force: true });
});

function review(env: Record<string, string>) {
  const summary = join(work, `summary-${Math.random().toString(36).slice(2)}.md`);
  const run = spawnSync("bash", [script], {
    cwd: work,
    env: {
      PATH: process.env.PATH,
      DATABASE_URL: db.url,
      MIGRATIONS_DIR: "migrations",
      PLAN_ROWS: "100",
      GITHUB_STEP_SUMMARY: summary,
      ...env,
    },
    encoding: "utf8",
  });
  let text = "";
  try {
    text = readFileSync(summary, "utf8");
  } catch {}
  return { code: run.status, stdout: run.stdout, stderr: run.stderr, summary: text };
}

it("puts the lock plan and the lint findings of the changed migrations in the job summary, and fails on findings", () => {
  const run = review({ REVIEW_BASE: base });
  expect(run.summary).toContain(`## Migration review (changes since ${base.slice(0, 12)})`);
  expect(run.summary).toContain(`#### \`${folder.tags[1]}\``);
  expect(run.summary).toMatch(
    /\| 1 \| `ALTER TABLE "bookmarks" ALTER COLUMN "visits" SET DATA TYPE bigint` \| AccessExclusiveLock public\.bookmarks \(100 rows\) \| \*\*reads and writes\*\* \| public\.bookmarks \|/,
  );
  expect(run.summary).toContain("[rolling-drop-column](https://");
  expect(run.summary).not.toContain(folder.tags[0]);
  expect(run.code).toBe(6);
});

it("only reports the findings with LINT_FINDINGS=report, as the deploy's review does", () => {
  const run = review({ REVIEW_BASE: base, LINT_FINDINGS: "report" });
  expect(run.summary).toContain("rolling-drop-column");
  expect(run.code).toBe(0);
});

it("says so, and passes, when there is no base commit to compare with", () => {
  const run = review({ REVIEW_BASE: "0".repeat(40) });
  expect(run.summary).toContain("No base commit to compare with");
  expect(run.code).toBe(0);
});

it("is ShellCheck-clean", () => {
  const result = spawnSync("shellcheck", ["--severity=style", script], { encoding: "utf8" });
  expect(result.error, "shellcheck must be installed").toBeUndefined();
  expect(result.stdout + result.stderr).toBe("");
  expect(result.status).toBe(0);
});
