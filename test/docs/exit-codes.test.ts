// One source for each fact (issue 17): the exit-code tables in the docs are ExitCode and its
// meanings from packages/migrator/src/errors.ts, and every pointer to "the contract" names a
// file this repository has. A failing check prints the table to paste.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { ExitCode, exitCodeMeanings } from "../../packages/migrator/src/errors.js";

const repo = fileURLToPath(new URL("../../", import.meta.url));
const documents = ["README.md", "specs/114-drizzle-kit-k8s-migration/contracts/migrator-cli.md", "packages/migrator/README.md"];
const begin = "<!-- exit codes: generated from ExitCode in packages/migrator/src/errors.ts; test/docs/exit-codes.test.ts checks it -->";
const end = "<!-- end of exit codes -->";

function exitCodeTable(): string {
  const rows = Object.entries(ExitCode)
    .sort(([, a], [, b]) => a - b)
    .map(([name, code]) => `| ${code} | \`${name}\` | ${exitCodeMeanings[name as keyof typeof ExitCode]} |`);
  return [begin, "", "| exit | `ExitCode.` | meaning |", "| ---: | --- | --- |", ...rows, "", end].join("\n");
}

describe("exit codes in the docs", () => {
  it.each(documents)("%s carries the table generated from ExitCode", (document) => {
    const text = readFileSync(join(repo, document), "utf8");
    const start = text.indexOf(begin);
    const stop = text.indexOf(end);
    expect(start, `${document} has no exit code table; paste:\n\n${exitCodeTable()}\n`).toBeGreaterThanOrEqual(0);
    expect(
      text.slice(start, stop + end.length),
      `${document}'s exit code table differs from ExitCode; paste:\n\n${exitCodeTable()}\n`,
    ).toBe(exitCodeTable());
  });

  it("every code has a meaning and no two names share a code", () => {
    expect(Object.keys(exitCodeMeanings).sort()).toEqual(Object.keys(ExitCode).sort());
    expect(new Set(Object.values(ExitCode)).size).toBe(Object.keys(ExitCode).length);
  });
});

describe("pointers to the contract", () => {
  it("every CONTRACT.md a tracked file names is a file of this repository", () => {
    // git grep exits 1 when nothing matches, which is the expected case.
    const grep = spawnSync(
      "git",
      ["grep", "-n", "-I", "-o", "-E", "[A-Za-z0-9_./-]*CONTRACT\\.md", "--", ".", ":!test/docs/exit-codes.test.ts"],
      {
        cwd: repo,
        encoding: "utf8",
      },
    );
    expect(grep.status === 0 || grep.status === 1, grep.stderr).toBe(true);
    const dangling = grep.stdout
      .split("\n")
      .filter(Boolean)
      .filter((hit) => !existsSync(join(repo, hit.split(":").slice(2).join(":"))));
    expect(dangling).toEqual([]);
  });
});
