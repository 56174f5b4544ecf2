// The package's faces (issue 17): the root export is the library alone, so a worker or a test
// that embeds it gets no CLI, no console output and no signal handlers; the CLI is its own
// subpath. Each import runs in a fresh node, so what the test runner loaded does not count.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { builtinModules, createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { createTestDatabase } from "../../../test/support/database.js";
import { freePort } from "../../../test/support/net.js";
import { MigrationsFolder } from "./support/migrations.js";

const pkgDir = fileURLToPath(new URL("..", import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), "yomu-exports-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

interface Loaded {
  /** Every file the import loaded, relative to the package. */
  files: string[];
  names: string[];
  stdout: string;
  signalListeners: number;
}

/** Imports `specifier` from inside the package, so its "exports" map decides, with a loader hook listing each file loaded. */
function load(specifier: string): Loaded {
  const list = join(scratch, `${Buffer.from(specifier).toString("hex")}.txt`);
  const hooks = `import { appendFileSync } from "node:fs";
export async function load(url, context, next) {
  if (url.startsWith("file:")) appendFileSync(${JSON.stringify(list)}, url + "\\n");
  return next(url, context);
}`;
  const register = `import { register } from "node:module"; register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hooks)}`)});`;
  const main = `const m = await import(${JSON.stringify(specifier)});
process.stderr.write(JSON.stringify({ names: Object.keys(m), signalListeners: process.listenerCount("SIGTERM") + process.listenerCount("SIGINT") }));`;
  const run = spawnSync(
    process.execPath,
    ["--import", `data:text/javascript,${encodeURIComponent(register)}`, "--input-type=module", "-e", main],
    {
      cwd: pkgDir,
      encoding: "utf8",
    },
  );
  if (run.status !== 0) throw new Error(`importing ${specifier} failed:\n${run.stderr}`);
  const report = JSON.parse(run.stderr) as { names: string[]; signalListeners: number };
  const files = readFileSync(list, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((url) => fileURLToPath(url).slice(pkgDir.length));
  return { files, stdout: run.stdout, ...report };
}

describe("@yomu/migrator's exports", () => {
  it("the root export is the library: no CLI module, no output, no signal handlers, nothing loaded on speculation", () => {
    const root = load("@yomu/migrator");
    expect(root.files).toContain("dist/index.js");
    expect(root.files).not.toContain("dist/cli.js");
    expect(root.files.filter((f) => f.includes("node_modules/prom-client/"))).toEqual([]);
    expect(root.names).not.toContain("runCli");
    expect(root.names).not.toContain("createLogger");
    for (const name of [
      "runMigrations",
      "readStatus",
      "verify",
      "lint",
      "lintPending",
      "planLocks",
      "rollBack",
      "planMigrations",
      "MigratorError",
      "ExitCode",
    ]) {
      expect(root.names).toContain(name);
    }
    expect(root.stdout).toBe("");
    expect(root.signalListeners).toBe(0);
  });

  it("the CLI is @yomu/migrator/cli, and importing it runs nothing", () => {
    const cli = load("@yomu/migrator/cli");
    expect(cli.files).toContain("dist/cli.js");
    expect(cli.names).toContain("runCli");
    expect(cli.stdout).toBe("");
    expect(cli.signalListeners).toBe(0);
  });

  it("the JSON-lines sink is @yomu/migrator/log", () => {
    expect(load("@yomu/migrator/log").names).toEqual(expect.arrayContaining(["createLogger", "redact"]));
  });

  it("the Job's bundle reaches prom-client and libpg-query only through import(), so a plain no-op up loads neither", () => {
    // esbuild's own account of the bundle, written by bundle.mjs at build time.
    const meta = JSON.parse(readFileSync(join(pkgDir, "dist/yomu-migrate.meta.json"), "utf8")) as {
      outputs: Record<string, { imports: Array<{ path: string; kind: string; external?: boolean }> }>;
    };
    const bundle = meta.outputs["dist/yomu-migrate.mjs"];
    expect(bundle, "dist/yomu-migrate.mjs is built").toBeDefined();
    const heavy = (bundle?.imports ?? []).filter((i) => /^(prom-client|libpg-query)(\/|$)/.test(i.path));
    expect(heavy.map((i) => i.path)).toContain("prom-client");
    expect(heavy.filter((i) => i.kind !== "dynamic-import")).toEqual([]);
    // Nothing else from node_modules stays outside the bundle: the Job runs this one file.
    const external = (bundle?.imports ?? []).filter((i) => i.external && !i.path.startsWith("node:") && !isBuiltin(i.path));
    expect(external.every((i) => ["prom-client", "libpg-query", "pg-native"].includes(i.path))).toBe(true);
  });

  it("the Job's bundle connects with pg's Node socket factory alone, which offers what pg's own module offers", () => {
    // bundle.mjs stands in for pg/lib/stream.js, so that a no-op up never loads Node's fetch
    // (undici, zlib): the run below checks that.
    const require = createRequire(join(pkgDir, "package.json"));
    expect(Object.keys(require("pg/lib/stream.js")).sort()).toEqual(["getSecureStream", "getStream"]);
  });

  it("the Job's bundle, run for real: a no-op up resolves neither and loads no fetch, and PUSHGATEWAY_URL brings prom-client in", async () => {
    const db = await createTestDatabase("bundle_lazy");
    const folder = new MigrationsFolder([{ name: "first", statements: ["CREATE TABLE first (id integer);"] }]);
    try {
      const env = { DATABASE_URL: db.url, MIGRATIONS_DIR: folder.dir, LOG_FORMAT: "json" };
      expect(runBundle("apply", env).status).toBe(0);
      const noop = runBundle("noop", env);
      expect(noop.stdout).toContain('"status":"noop"');
      expect(noop.resolved).toEqual([]);
      // Node's own record of the built-in modules it loaded, read as the process exits.
      expect(noop.builtins.length, "the exit hook ran").toBeGreaterThan(0);
      expect(noop.builtins.filter((m) => /undici|zlib/.test(m))).toEqual([]);
      expect(noop.builtins).toContain("NativeModule net");
      // Nothing listens there: the push fails with a warning and the run still succeeds.
      const pushed = runBundle("push", { ...env, PUSHGATEWAY_URL: `http://127.0.0.1:${await freePort()}` });
      expect(pushed.status, pushed.stdout).toBe(0);
      expect(pushed.resolved).toEqual(["prom-client"]);
    } finally {
      folder.remove();
      await db.drop();
    }
  });
});

function isBuiltin(name: string): boolean {
  return builtinModules.includes(name);
}

/** Runs `dist/yomu-migrate.mjs up` with a resolve hook that lists the heavy modules it asked for. */
function runBundle(
  label: string,
  env: Record<string, string>,
): { status: number | null; stdout: string; resolved: string[]; builtins: string[] } {
  const list = join(scratch, `bundle-${label}.txt`);
  const builtinsFile = join(scratch, `bundle-${label}-builtins.json`);
  const hooks = `import { appendFileSync } from "node:fs";
export async function resolve(specifier, context, next) {
  if (/^(prom-client|libpg-query)$/.test(specifier)) appendFileSync(${JSON.stringify(list)}, specifier + "\\n");
  return next(specifier, context);
}`;
  const register = `import { register } from "node:module"; import { writeFileSync } from "node:fs";
register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hooks)}`)});
process.on("exit", () => writeFileSync(${JSON.stringify(builtinsFile)}, JSON.stringify(process.moduleLoadList)));`;
  const run = spawnSync(
    process.execPath,
    ["--import", `data:text/javascript,${encodeURIComponent(register)}`, join(pkgDir, "dist/yomu-migrate.mjs"), "up"],
    {
      env: { PATH: process.env.PATH, ...env },
      encoding: "utf8",
    },
  );
  const resolved = existsSync(list) ? [...new Set(readFileSync(list, "utf8").split("\n").filter(Boolean))] : [];
  const builtins = existsSync(builtinsFile) ? (JSON.parse(readFileSync(builtinsFile, "utf8")) as string[]) : [];
  return { status: run.status, stdout: run.stdout + run.stderr, resolved, builtins };
}
