#!/usr/bin/env node
// The test suite's set-up on a Debian or Ubuntu machine: every tool in system-tools.txt on PATH.
// As root it installs what is missing with apt-get; otherwise (or with --check) it stops with one
// message naming each missing tool and its package. Exit 0 all present, 1 something missing.
import { spawnSync } from "node:child_process";
import { accessSync, constants, readFileSync } from "node:fs";
import { delimiter, join } from "node:path";

const listFile = new URL("./system-tools.txt", import.meta.url);
const tools = readFileSync(listFile, "utf8")
  .split("\n")
  .map((line) => line.replace(/#.*/, "").trim())
  .filter(Boolean)
  .map((line) => {
    const [command, pkg] = line.split(/\s+/);
    return { command, pkg };
  });

const onPath = (command) =>
  (process.env.PATH ?? "").split(delimiter).some((folder) => {
    try {
      accessSync(join(folder || ".", command), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
const missing = () => tools.filter((tool) => !onPath(tool.command));

let absent = missing();
const canInstall = !process.argv.includes("--check") && process.getuid?.() === 0 && onPath("apt-get");
if (absent.length > 0 && canInstall) {
  const packages = [...new Set(absent.map((tool) => tool.pkg))];
  process.stderr.write(`test set-up: installing ${packages.join(" ")} with apt-get (for ${absent.map((t) => t.command).join(", ")})\n`);
  const apt = (args) =>
    spawnSync("apt-get", args, { stdio: ["ignore", "ignore", "inherit"], env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } })
      .status === 0;
  if (!apt(["update", "-qq"]) || !apt(["install", "-y", "-qq", "--no-install-recommends", ...packages])) {
    process.stderr.write("test set-up: apt-get failed (its message is above)\n");
  }
  absent = missing();
}
if (absent.length > 0) {
  const packages = [...new Set(absent.map((tool) => tool.pkg))];
  process.stderr.write(
    `test set-up: missing ${absent.map((t) => `${t.command} (package ${t.pkg})`).join(", ")}; ` +
      `install them with: sudo apt-get install ${packages.join(" ")} (or run this as root), then run again\n`,
  );
  process.exit(1);
}
