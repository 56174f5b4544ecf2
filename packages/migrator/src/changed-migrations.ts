import { execFile } from "node:child_process";
import { mkdtempSync, realpathSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { promisify } from "node:util";
import { MigratorError } from "./errors.js";
import { type MigrationFolder, type MigrationLayout, readMigrationFolder } from "./journal.js";

const run = promisify(execFile);

/** A migration of the branch that was added or changed since the base. */
export interface ChangedMigration {
  tag: string;
  /** Its `.sql` file, relative to the working directory. */
  file: string;
}

/** What the base branch ships, to tell a new migration that would run out of order. */
export interface BaseJournal {
  /** The base branch's layout; undefined when it has no migrations yet. */
  layout: MigrationLayout | undefined;
  /** The branch's own layout: out of order means refused (journal) or applied in another order (folders). */
  ownLayout: MigrationLayout;
  newestWhen: number;
  newestTag: string;
  tags: Set<string>;
  /** `when` of every migration in the branch's own folder, by tag. */
  whens: Map<string, number>;
  /** The tag of each file `changedMigrations` returned, as lint is given files. */
  tagOfFile: Map<string, string>;
}

/**
 * Migrations added or changed since `base` (a branch or commit), uncommitted ones included, in
 * either drizzle-kit layout: a changed `<tag>.sql`, or a changed `<folder>/migration.sql`, is that
 * migration. Both the branch's folder and the base's are read by `readMigrationFolder`, so a file
 * counts as a migration exactly when `up` would apply it.
 *
 * @example
 *   const { migrations, baseJournal } = await changedMigrations("drizzle", "origin/main");
 *   migrations.map((m) => m.tag); // ["20260301120000_add_tags"]
 */
export async function changedMigrations(
  dir: string,
  base: string,
): Promise<{ files: string[]; migrations: ChangedMigration[]; baseJournal: BaseJournal }> {
  const ours = readMigrationFolder(dir);
  // git names paths from the real top level; a symlinked temp dir or checkout must not hide them.
  const real = realpathSync(dir);
  const root = (await git(["-C", real, "rev-parse", "--show-toplevel"])).trim();
  const folder = relative(root, real);
  const mergeBase = (await git(["-C", root, "merge-base", base, "HEAD"])).trim();
  const pathspec = folder === "" ? "." : folder;
  const changed = (await git(["-C", root, "diff", "--name-only", "--diff-filter=AMR", mergeBase, "--", pathspec])).split("\n");
  const untracked = (await git(["-C", root, "ls-files", "--others", "--exclude-standard", "--", pathspec])).split("\n");
  const touched = new Set([...changed, ...untracked].filter(Boolean).map((f) => resolve(root, f)));
  const migrations = ours.migrations
    .filter((m) => touched.has(realpathSync(m.file)))
    .map((m) => ({ tag: m.tag, file: relative(process.cwd(), resolve(m.file)) }));
  const theirs = await readBaseFolder(root, base, folder);
  const newest = theirs?.migrations.reduce<{ tag: string; when: number } | undefined>((a, b) => (a && a.when >= b.when ? a : b), undefined);
  return {
    files: migrations.map((m) => m.file),
    migrations,
    baseJournal: {
      layout: theirs?.layout,
      ownLayout: ours.layout,
      newestWhen: newest?.when ?? 0,
      newestTag: newest?.tag ?? "",
      tags: new Set(theirs?.migrations.map((m) => m.tag)),
      whens: new Map(ours.migrations.map((m) => [m.tag, m.when])),
      tagOfFile: new Map(migrations.map((m) => [m.file, m.tag])),
    },
  };
}

/**
 * The base branch's migrations folder, checked out into a scratch directory through a scratch
 * index (the work tree and the real index are untouched) and read as `up` reads a folder.
 * Undefined when the base has no such folder yet: then every migration is new, none out of order.
 */
async function readBaseFolder(root: string, base: string, folder: string): Promise<MigrationFolder | undefined> {
  const tree = `${base}:${folder}`;
  const kind = await run("git", ["-C", root, "cat-file", "-t", tree]).then(
    (result) => result.stdout.trim(),
    () => undefined,
  );
  if (kind !== "tree") return undefined;
  const scratch = mkdtempSync(join(tmpdir(), "yomu-base-"));
  try {
    const env = { ...process.env, GIT_INDEX_FILE: join(scratch, "index") };
    await git(["-C", root, "read-tree", tree], env);
    await git(["-C", root, "checkout-index", "--all", `--prefix=${join(scratch, "folder")}/`], env);
    try {
      return readMigrationFolder(join(scratch, "folder"));
    } catch (error) {
      if (!(error instanceof MigratorError)) throw error;
      throw new MigratorError("JOURNAL_INVALID", `${tree} (the base): ${error.message.split(join(scratch, "folder")).join(folder)}`, {
        cause: error,
        hint: error.hint,
      });
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** Runs git; its failure becomes a usage error in git's own words. */
async function git(args: string[], env?: NodeJS.ProcessEnv): Promise<string> {
  try {
    return (await run("git", args, { maxBuffer: 16 * 1024 * 1024, env })).stdout;
  } catch (error) {
    throw new MigratorError(
      "CONFIG_INVALID",
      `git ${args.join(" ")} failed: ${((error as { stderr?: string }).stderr ?? "").trim() || (error as Error).message}`,
      {
        cause: error,
        hint: "--base needs a git checkout that has the base branch (in CI: fetch it, e.g. fetch-depth: 0)",
      },
    );
  }
}
