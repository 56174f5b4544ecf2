// `lint --base` and `plan --base` in a real git repository, for both drizzle-kit layouts: what
// changed since the base is found from the folder as `up` reads it, and the out-of-order rule
// compares with the base branch's own folder.
import { execFileSync } from "node:child_process";
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../../test/support/database.js";
import { changedMigrations } from "../src/changed-migrations.js";
import { eventsNamed, runCli } from "./support/cli.js";
import { MigrationFolders, type MigrationSpec, MigrationsFolder } from "./support/migrations.js";

const repo = fileURLToPath(new URL("../../../", import.meta.url));
const day = (n: number) => Date.UTC(2026, 0, n, 12, 0, 0);

const first: MigrationSpec = { name: "first", when: day(1), statements: ['CREATE TABLE "a" ("id" int, "old" text)'] };
// The feature branch generated its migration on Jan 2; main merged one from Jan 3 meanwhile.
const feature: MigrationSpec = { name: "feature_change", when: day(2), statements: ['ALTER TABLE "a" DROP COLUMN "old"'] };
const mainChange: MigrationSpec = { name: "main_change", when: day(3), statements: ['ALTER TABLE "a" ADD COLUMN "c" text'] };

type Layout = "journal" | "folders";
const folderOf = (layout: Layout, specs: MigrationSpec[]) =>
  layout === "journal" ? new MigrationsFolder(specs) : new MigrationFolders(specs);
/** Where a migration's SQL is, relative to the repository: `<tag>.sql` or `<tag>/migration.sql`. */
const sqlPath = (layout: Layout, tag: string) =>
  layout === "journal" ? join("migrations", `${tag}.sql`) : join("migrations", tag, "migration.sql");

let work: string;
const scratch: Array<{ remove(): void }> = [];

function git(...args: string[]): string {
  return execFileSync("git", ["-C", work, "-c", "user.name=t", "-c", "user.email=t@example.com", ...args], { encoding: "utf8" });
}

/** Replaces `migrations/` in the work tree with a folder of these migrations. */
function checkIn(layout: Layout, specs: MigrationSpec[]): string[] {
  const folder = folderOf(layout, specs);
  scratch.push(folder);
  rmSync(join(work, "migrations"), { recursive: true, force: true });
  cpSync(folder.dir, join(work, "migrations"), { recursive: true });
  return folder.tags;
}

/** main with `first`, a feature branch adding `feature`, then main adding `main_change`; left on feature. */
function history(baseLayout: Layout, branchLayout: Layout = baseLayout): { tags: string[] } {
  work = mkdtempSync(join(tmpdir(), "yomu-base-git-"));
  git("init", "-q", "-b", "main");
  cpSync(join(repo, ".squawk.toml"), join(work, ".squawk.toml"));
  checkIn(baseLayout, [first]);
  git("add", "-A");
  git("commit", "-qm", "first");
  git("checkout", "-qb", "feature");
  const tags = checkIn(branchLayout, [first, feature]);
  git("add", "-A");
  git("commit", "-qm", "feature");
  git("checkout", "-q", "main");
  checkIn(baseLayout, [first, mainChange]);
  git("add", "-A");
  git("commit", "-qm", "main");
  git("checkout", "-q", "feature");
  return { tags };
}

async function cli(args: string[], env: Record<string, string> = {}) {
  const run = await runCli(args, env, { cwd: work });
  const findings = eventsNamed(run, "migration.lint.finding").map((e) => ({ file: e.file, rule: e.rule, message: e.message }));
  return { ...run, findings };
}

afterEach(() => {
  for (const folder of scratch.splice(0)) folder.remove();
  if (work && !process.env.KEEP) rmSync(work, { recursive: true, force: true });
});

describe.each(["journal", "folders"] as const)("lint --base on drizzle-kit's %s layout", (layout) => {
  it("lints the migration added since the base, and finds it older than the base's newest", async () => {
    const { tags } = history(layout);
    const run = await cli(["lint", "--base", "main", "--dir", "migrations"]);
    expect(run.code, run.stdout + run.stderr).toBe(6);
    const file = sqlPath(layout, tags[1] as string);
    expect(run.findings.map((f) => [f.file, f.rule])).toEqual([
      [file, "out-of-order"],
      [file, "rolling-drop-column"],
    ]);
    expect(run.findings[0]?.message).toContain(`${tags[1]} is older than 20260103120000_main_change`);
    const finished = run.events.find((e) => e.event === "migration.lint.finished");
    expect(finished?.files).toBe(1);
  });

  it("counts an uncommitted migration, and not a file beside one that is not its SQL", async () => {
    const { tags } = history(layout);
    git("checkout", "-q", "main");
    git("checkout", "-qb", "other");
    const added = checkIn(layout, [first, mainChange, { name: "later", when: day(4), statements: ["SELECT 1"] }]);
    // Uncommitted too: the applied first migration's new down file (and, for 1.0, its edited snapshot).
    const firstTag = tags[0] as string;
    writeFileSync(join(work, layout === "journal" ? `migrations/${firstTag}.down.sql` : `migrations/${firstTag}/down.sql`), "SELECT 1;\n");
    if (layout === "folders") writeFileSync(join(work, "migrations", firstTag, "snapshot.json"), "{}\n");
    const changed = await changedMigrations(join(work, "migrations"), "main");
    expect(changed.migrations.map((m) => m.tag)).toEqual([added[2]]);
    expect(changed.baseJournal.layout).toBe(layout);
  });
});

describe("lint --base on the branch that moves the folder to drizzle-kit 1.0's layout", () => {
  it("lints every renamed migration but finds none out of order", async () => {
    history("journal", "folders");
    const run = await cli(["lint", "--base", "main", "--dir", "migrations"]);
    // One deploy: the column dropped is on a table the same deploy creates, so nothing is found.
    expect(run.findings).toEqual([]);
    expect(run.events.find((e) => e.event === "migration.lint.finished")?.files).toBe(2);
  });
});

describe.each(["journal", "folders"] as const)("plan --base on drizzle-kit's %s layout", (layout) => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase("plan_base");
  });
  afterAll(async () => {
    await db.drop();
  });

  it("traces only the migration added since the base, on a copy built from the others", async () => {
    const { tags } = history(layout);
    const run = await cli(["plan", "--json", "--base", "main", "--dir", "migrations"], { DATABASE_URL: db.url });
    expect(run.code, run.stdout + run.stderr).toBe(0);
    const plan = JSON.parse(run.stdout) as { migrations: Array<{ tag: string; statements: Array<{ locks: unknown[] }> }> };
    expect(plan.migrations.map((m) => m.tag)).toEqual([tags[1]]);
    expect(plan.migrations[0]?.statements[0]?.locks).toEqual([
      expect.objectContaining({ relation: "public.a", mode: "AccessExclusiveLock" }),
    ]);
  });
});
