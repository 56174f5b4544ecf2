// The deploy runs in bash on a CI runner with no second chance, so its shell code gets
// ShellCheck's full attention (CI installs shellcheck; .ci/run does too).
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";

const root = fileURLToPath(new URL("../..", import.meta.url));

it("scripts/deploy.sh and the kubectl stand-in have no ShellCheck findings", () => {
  const files = ["scripts/deploy.sh", "test/deploy/kubectl-stand-in/bin/kubectl"];
  const result = spawnSync("shellcheck", ["--external-sources", "--severity=style", ...files], { cwd: root, encoding: "utf8" });
  expect(result.error, "shellcheck must be installed").toBeUndefined();
  expect(result.stdout + result.stderr).toBe("");
  expect(result.status).toBe(0);
});
