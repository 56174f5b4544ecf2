// The README's test command must set up a fresh machine or say, before any test runs, what is
// missing. These run scripts/system-tools.mjs on a PATH that holds node and a chosen few tools.
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../..", import.meta.url));
const script = join(root, "scripts/system-tools.mjs");
const listed = readFileSync(join(root, "scripts/system-tools.txt"), "utf8")
  .split("\n")
  .map((line) => line.replace(/#.*/, "").trim().split(/\s+/))
  .filter(([command]) => command) as [string, string][];

const folders: string[] = [];
afterEach(() => {
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
});

/** A PATH folder with node and a stand-in for each given command. */
function pathWith(commands: string[]): string {
  const bin = mkdtempSync(join(tmpdir(), "yomu-tools-"));
  folders.push(bin);
  symlinkSync(process.execPath, join(bin, "node"));
  for (const command of commands) writeExecutable(join(bin, command), "#!/bin/sh\nexit 0\n");
  return bin;
}

function writeExecutable(path: string, text: string): void {
  writeFileSync(path, text);
  chmodSync(path, 0o755);
}

function run(bin: string, args: string[] = []) {
  return spawnSync(join(bin, "node"), [script, ...args], { env: { PATH: bin }, encoding: "utf8" });
}

describe("scripts/system-tools.mjs", () => {
  it("lists the tools the suite runs, pgbouncer and pg_dump among them", () => {
    expect(listed.map(([command]) => command)).toEqual(
      expect.arrayContaining(["shellcheck", "yamllint", "promtool", "prometheus-pushgateway", "pg_dump", "pgbouncer"]),
    );
    for (const [, pkg] of listed) expect(pkg).toMatch(/^[a-z0-9.+-]+$/);
  });

  it("passes quietly when every tool is there", () => {
    const result = run(pathWith(listed.map(([command]) => command)), ["--check"]);
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
  });

  it("stops with one line naming each missing tool, its package and the apt-get command", () => {
    const present = listed.map(([command]) => command).filter((command) => command !== "shellcheck" && command !== "promtool");
    const result = run(pathWith(present), ["--check"]);
    expect(result.status).toBe(1);
    expect(result.stderr.trim().split("\n")).toHaveLength(1);
    expect(result.stderr).toContain("missing shellcheck (package shellcheck), promtool (package prometheus)");
    expect(result.stderr).toContain("sudo apt-get install shellcheck prometheus");
    expect(result.stderr).not.toContain("yamllint");
  });

  it("as root installs what is missing with apt-get (update first), otherwise only names it", () => {
    const present = listed.map(([command]) => command).filter((command) => command !== "yamllint");
    const bin = pathWith(present);
    const calls = join(bin, "apt-calls");
    // An apt-get stand-in: records its arguments and, on install, provides the tool.
    writeExecutable(
      join(bin, "apt-get"),
      `#!/bin/sh\necho "$*" >>"${calls}"\n[ "$1" = install ] && printf '#!/bin/sh\\n' >"${bin}/yamllint" && /bin/chmod +x "${bin}/yamllint"\nexit 0\n`,
    );
    const result = run(bin);
    const recorded = () => readFileSync(calls, "utf8").trim().split("\n");
    if (process.getuid?.() === 0) {
      expect(result.status, result.stderr).toBe(0);
      expect(recorded()).toEqual(["update -qq", "install -y -qq --no-install-recommends yamllint"]);
      expect(result.stderr).toContain("installing yamllint with apt-get");
    } else {
      expect(result.status).toBe(1);
      expect(() => recorded()).toThrow();
      expect(result.stderr).toContain("missing yamllint (package yamllint)");
    }
  });
});
