import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { promisify } from "node:util";
import { MigratorError } from "./errors.js";

const run = promisify(execFile);

export interface BaseJournal {
  newestWhen: number;
  newestTag: string;
  tags: Set<string>;
  /** `when` of every migration in the branch's own journal, by tag. */
  whens: Map<string, number>;
}

/** Migrations added or changed since `base` (a branch or commit), uncommitted ones included. */
export async function changedMigrations(dir: string, base: string): Promise<{ files: string[]; baseJournal: BaseJournal }> {
  const git = async (...args: string[]) => {
    try {
      return (await run("git", args, { maxBuffer: 16 * 1024 * 1024 })).stdout;
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
  };
  const root = (await git("-C", resolve(dir), "rev-parse", "--show-toplevel")).trim();
  const folder = relative(root, resolve(dir));
  const mergeBase = (await git("-C", root, "merge-base", base, "HEAD")).trim();
  const changed = (await git("-C", root, "diff", "--name-only", "--diff-filter=AMR", mergeBase, "--", folder)).split("\n");
  const untracked = (await git("-C", root, "ls-files", "--others", "--exclude-standard", "--", folder)).split("\n");
  const files = [...new Set([...changed, ...untracked])]
    .filter((f) => f.endsWith(".sql") && !f.endsWith(".down.sql") && dirname(f) === folder)
    .map((f) => relative(process.cwd(), join(root, f)));
  let entries: Array<{ tag: string; when: number }> = [];
  try {
    entries = JSON.parse(await git("-C", root, "show", `${base}:${folder}/meta/_journal.json`)).entries ?? [];
  } catch (error) {
    if (!(error instanceof MigratorError)) throw error;
    // No journal on the base branch yet: every migration is new, none can be out of order.
  }
  const newest = entries.reduce<{ tag: string; when: number } | undefined>((a, b) => (a && a.when >= b.when ? a : b), undefined);
  const ours = JSON.parse(readFileSync(join(dir, "meta", "_journal.json"), "utf8")).entries as Array<{ tag: string; when: number }>;
  return {
    files: files.sort(),
    baseJournal: {
      newestWhen: newest?.when ?? 0,
      newestTag: newest?.tag ?? "",
      tags: new Set(entries.map((e) => e.tag)),
      whens: new Map(ours.map((e) => [e.tag, e.when])),
    },
  };
}
