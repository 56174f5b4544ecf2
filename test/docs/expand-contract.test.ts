import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../support/database.js";

// The quickstart's expand/contract playbook, run for real: renaming bookmarks.title to label
// across three deploys, with the app version of each deploy reading and writing in between.
const repo = fileURLToPath(new URL("../../", import.meta.url));
const examples = join(repo, "specs/114-drizzle-kit-k8s-migration/examples/rename-bookmark-title");
const cli = join(repo, "packages/migrator/bin/yomu-migrate.js");

/** What each release's app sends, as SQL: v0 is today's app, v1 deploy 1's, v2 deploy 2's. */
const app = {
  v0: {
    insert: `INSERT INTO bookmarks (user_id, url, title) VALUES ($1, $2, 'v0') RETURNING id`,
    read: "SELECT id, url, title FROM bookmarks WHERE user_id = $1",
  },
  v1: {
    insert: `INSERT INTO bookmarks (user_id, url, title, label) VALUES ($1, $2, 'v1', 'v1') RETURNING id`,
    read: "SELECT id, url, title FROM bookmarks WHERE user_id = $1",
  },
  v2: {
    insert: `INSERT INTO bookmarks (user_id, url, label) VALUES ($1, $2, 'v2') RETURNING id`,
    read: "SELECT id, url, label FROM bookmarks WHERE user_id = $1",
  },
};

let db: TestDatabase;
let dir: string;
let userId: string;
let n = 0;

function lint(file: string) {
  return spawnSync(process.execPath, [cli, "lint", join(examples, file)], { cwd: repo, encoding: "utf8" });
}

/** Adds an example file to the migrations folder as drizzle-kit would, with a newer journal entry. */
function addMigration(file: string, name: string) {
  const journalPath = join(dir, "meta", "_journal.json");
  const journal = JSON.parse(readFileSync(journalPath, "utf8"));
  const last = journal.entries[journal.entries.length - 1];
  const when = last.when + 60_000;
  const tag = `${new Date(when).toISOString().replace(/[-:T]/g, "").slice(0, 14)}_${name}`;
  cpSync(join(examples, file), join(dir, `${tag}.sql`));
  journal.entries.push({ idx: journal.entries.length, version: "7", when, tag, breakpoints: true });
  writeFileSync(journalPath, JSON.stringify(journal, null, 2));
}

function migrate() {
  const run = spawnSync(process.execPath, [cli, "up"], {
    env: { PATH: process.env.PATH, DATABASE_URL: db.url, MIGRATIONS_DIR: dir },
    encoding: "utf8",
  });
  expect(run.status, run.stdout + run.stderr).toBe(0);
}

async function works(version: keyof typeof app): Promise<boolean> {
  try {
    await db.query(app[version].insert, [userId, `https://example.com/${version}/${++n}`]);
    await db.query(app[version].read, [userId]);
    return true;
  } catch {
    return false;
  }
}

beforeAll(async () => {
  db = await createTestDatabase("expand");
  dir = mkdtempSync(join(tmpdir(), "yomu-expand-"));
  cpSync(join(repo, "drizzle/migrations"), dir, { recursive: true });
  migrate();
  userId = (await db.query<{ id: string }>("INSERT INTO users (email, name) VALUES ('ada@example.com', 'Ada') RETURNING id")).rows[0]
    ?.id as string;
  await works("v0");
});
afterAll(async () => {
  await db.drop();
  rmSync(dir, { recursive: true, force: true });
});

describe("renaming bookmarks.title in one step", () => {
  it("is stopped by the lint's rolling-rename rule", () => {
    const run = lint("0-one-step.sql");
    expect(run.status).toBe(6);
    expect(run.stdout).toMatch(/0-one-step\.sql:3:\d+ rolling-rename /);
  });
});

describe("renaming bookmarks.title across three deploys", () => {
  it("lints clean at every step", () => {
    for (const file of ["1-expand.sql", "2a-backfill.sql", "2b-not-null.sql", "3-contract.sql"]) {
      expect(lint(file).status, file).toBe(0);
    }
  });

  it("deploy 1 (expand): today's app and deploy 1's both work", async () => {
    addMigration("1-expand.sql", "bookmarks_add_label");
    migrate();
    expect(await works("v0")).toBe(true);
    expect(await works("v1")).toBe(true);
  });

  it("deploy 2 (migrate): deploy 1's app and deploy 2's both work, and old rows have their label", async () => {
    addMigration("2a-backfill.sql", "bookmarks_backfill_label");
    addMigration("2b-not-null.sql", "bookmarks_label_not_null");
    migrate();
    expect(await works("v1")).toBe(true);
    expect(await works("v2")).toBe(true);
    const unlabeled = await db.query("SELECT 1 FROM bookmarks WHERE label IS NULL OR (title <> '' AND label <> title)");
    expect(unlabeled.rowCount).toBe(0);
    const nullable = await db.query(
      "SELECT is_nullable FROM information_schema.columns WHERE table_name = 'bookmarks' AND column_name = 'label'",
    );
    expect(nullable.rows[0]).toEqual({ is_nullable: "NO" });
  });

  it("deploy 3 (contract): deploy 2's app still works once title is gone; deploy 1's would not have", async () => {
    addMigration("3-contract.sql", "bookmarks_drop_title");
    migrate();
    expect(await works("v2")).toBe(true);
    expect(await works("v1")).toBe(false);
  });

  it("leaves yomu-migrate's status current", () => {
    const status = execFileSync(process.execPath, [cli, "status", "--json", "--require-current"], {
      env: { PATH: process.env.PATH, DATABASE_URL: db.url, MIGRATIONS_DIR: dir },
      encoding: "utf8",
    });
    expect(JSON.parse(status).pending).toEqual([]);
  });
});
