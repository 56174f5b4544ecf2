import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ValidationSeverity, validate } from "dockerfile-utils";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";

// apps/api/Dockerfile: linted with dockerfile-utils, then checked against the policy the rest of
// the system relies on (the Job and Deployment run `node apps/api/dist/...` from /app as 10001).

const root = join(import.meta.dirname, "../..");
const dockerfilePath = join(root, "apps/api/Dockerfile");
const dockerfile = readFileSync(dockerfilePath, "utf8");

interface Instruction {
  keyword: string;
  args: string;
  line: number;
}

interface Stage {
  name: string | undefined;
  image: string;
  instructions: Instruction[];
}

/** Instructions with continuation lines joined and comments dropped, split into stages. */
function parseDockerfile(text: string): { globalArgs: Map<string, string>; stages: Stage[] } {
  const instructions: Instruction[] = [];
  let pending: Instruction | undefined;
  text.split("\n").forEach((raw, i) => {
    const line = raw.trim();
    if (line.startsWith("#") || (line === "" && !pending)) return;
    const continued = line.endsWith("\\");
    const body = continued ? line.slice(0, -1).trim() : line;
    if (pending) pending.args = `${pending.args} ${body}`.trim();
    else {
      const [keyword = "", ...rest] = body.split(/\s+/);
      pending = { keyword: keyword.toUpperCase(), args: rest.join(" "), line: i + 1 };
    }
    if (!continued) {
      instructions.push(pending);
      pending = undefined;
    }
  });
  const globalArgs = new Map<string, string>();
  const stages: Stage[] = [];
  for (const instruction of instructions) {
    if (instruction.keyword === "FROM") {
      const [image = "", as, name] = instruction.args.split(/\s+/);
      stages.push({ name: as?.toUpperCase() === "AS" ? name : undefined, image, instructions: [] });
    } else if (stages.length === 0 && instruction.keyword === "ARG") {
      const [key = "", value = ""] = instruction.args.split("=");
      globalArgs.set(key, value);
    } else {
      stages[stages.length - 1]?.instructions.push(instruction);
    }
  }
  return { globalArgs, stages };
}

const { globalArgs, stages } = parseDockerfile(dockerfile);
const runtime = stages[stages.length - 1] as Stage;
const of = (stage: Stage, keyword: string) => stage.instructions.filter((i) => i.keyword === keyword);
const expand = (text: string) => text.replace(/\$\{(\w+)\}|\$(\w+)/g, (_m, a, b) => globalArgs.get(a ?? b) ?? `<unset ${a ?? b}>`);

/** COPY sources and destination, without the --from/--chown flags. */
function copyParts(instruction: Instruction): { from: string | undefined; sources: string[]; dest: string } {
  const words = instruction.args.split(/\s+/);
  const from = words.find((w) => w.startsWith("--from="))?.slice("--from=".length);
  const paths = words.filter((w) => !w.startsWith("--"));
  return { from, sources: paths.slice(0, -1), dest: paths[paths.length - 1] as string };
}

describe("apps/api/Dockerfile", () => {
  it("has no problems dockerfile-utils can find, even with every check raised to an error", () => {
    const strict = Object.fromEntries(
      [
        "deprecatedMaintainer",
        "directiveCasing",
        "emptyContinuationLine",
        "instructionCasing",
        "instructionCmdMultiple",
        "instructionEntrypointMultiple",
        "instructionHealthcheckMultiple",
        "instructionJSONInSingleQuotes",
        "instructionWorkdirRelative",
      ].map((k) => [k, ValidationSeverity.ERROR]),
    );
    expect(validate(dockerfile, strict)).toEqual([]);
    // The linter does see problems: a broken file is not silently clean.
    expect(validate("FROM node:20\nWORKDIR app\nCMD node a.js\nCMD node b.js\n", strict).length).toBeGreaterThan(0);
  });

  it("is multi-stage, from pinned Node 20 images, never `latest`", () => {
    expect(stages.length).toBeGreaterThanOrEqual(3);
    const images = stages.map((s) => expand(s.image)).filter((image) => !stages.some((s) => s.name === image));
    expect(images.length).toBeGreaterThanOrEqual(2);
    for (const image of images) {
      expect(image).toMatch(/^node:20\.\d+\.\d+-[a-z]+-slim$/);
      expect(image).not.toMatch(/:latest$|^[^:]+$/);
    }
  });

  it("builds with the lockfile frozen and ships only production dependencies", () => {
    const runs = stages.flatMap((s) => of(s, "RUN").map((r) => r.args));
    expect(runs.some((r) => /pnpm install --frozen-lockfile\b/.test(r) && /pnpm (--filter \S+ )?(run )?build\b/.test(r))).toBe(true);
    expect(runs.some((r) => /pnpm install --prod --frozen-lockfile\b/.test(r))).toBe(true);
    // The runtime stage builds nothing: no package manager runs in it.
    expect(
      of(runtime, "RUN")
        .map((r) => r.args)
        .join("\n"),
    ).not.toMatch(/\b(pnpm|npm|npx|tsc)\b/);
  });

  it("runs from /app as a numeric non-root user, the one the Kubernetes manifests expect", () => {
    expect(of(runtime, "WORKDIR").map((w) => w.args)).toEqual(["/app"]);
    const users = of(runtime, "USER");
    expect(users.length).toBeGreaterThan(0);
    const user = users[users.length - 1]?.args as string;
    expect(user).toMatch(/^\d+(:\d+)?$/);
    const uid = Number(user.split(":")[0]);
    expect(uid).toBeGreaterThan(0);
    // USER is the last word on who runs: nothing after it switches back.
    expect(
      runtime.instructions.slice(runtime.instructions.indexOf(users[users.length - 1] as Instruction)).map((i) => i.keyword),
    ).not.toContain("RUN");
    const manifests = ["k8s/yomu/deployment.yaml", "k8s/yomu/migration-job.yaml"].filter((f) => existsSync(join(root, f)));
    const runAs = manifests.flatMap((f) =>
      parseAllDocuments(readFileSync(join(root, f), "utf8")).flatMap((d) =>
        [...JSON.stringify(d.toJS()).matchAll(/"runAsUser":(\d+)/g)].map((m) => Number(m[1])),
      ),
    );
    for (const id of runAs) expect(id, "runAsUser in k8s/yomu").toBe(uid);
  });

  it("ships compiled JavaScript, the production node_modules and the migrations in the repository's layout", () => {
    const copies = of(runtime, "COPY").map(copyParts);
    const destinations = copies.map((c) => join("/app", c.dest).replace(/\/$/, ""));
    for (const path of [
      "/app/node_modules",
      "/app/apps/api/node_modules",
      "/app/apps/api/dist",
      "/app/packages/migrator/dist",
      "/app/packages/migrator/node_modules",
      "/app/drizzle/migrations",
    ]) {
      expect(destinations, path).toContain(path);
    }
    expect(copies.find((c) => c.dest.endsWith("drizzle/migrations"))).toMatchObject({ from: undefined, sources: ["drizzle/migrations"] });
    expect(copies.filter((c) => c.sources.some((s) => s.endsWith(".ts") || s.endsWith("/src")))).toEqual([]);
    expect(of(runtime, "CMD").map((c) => JSON.parse(c.args))).toEqual([["node", "apps/api/dist/main.js"]]);
  });

  it("carries every workspace package the API depends on at run time", () => {
    const api = JSON.parse(readFileSync(join(root, "apps/api/package.json"), "utf8")) as { dependencies: Record<string, string> };
    const workspace = Object.entries(api.dependencies).filter(([, v]) => v.startsWith("workspace:"));
    expect(workspace.length).toBeGreaterThan(0);
    const destinations = of(runtime, "COPY").map((c) => copyParts(c).dest.replace(/^\.\//, "").replace(/\/$/, ""));
    const install = stages.flatMap((s) => of(s, "RUN")).find((r) => r.args.includes("--prod"))?.args ?? "";
    for (const [name] of workspace) {
      const dir = `packages/${name.replace(/^@yomu\//, "")}`;
      expect(destinations, name).toContain(`${dir}/dist`);
      expect(install, name).toContain(`--filter ${name}`);
    }
  });

  it("records APP_VERSION as an environment variable and an OCI label", () => {
    expect(of(runtime, "ARG").map((a) => a.args.split("=")[0])).toContain("APP_VERSION");
    expect(
      of(runtime, "ENV")
        .map((e) => e.args)
        .join(" "),
    ).toMatch(/\bAPP_VERSION=\$\{APP_VERSION\}/);
    expect(
      of(runtime, "LABEL")
        .map((l) => l.args)
        .join(" "),
    ).toMatch(/org\.opencontainers\.image\.version="\$\{APP_VERSION\}"/);
  });

  it("copies from the build context only files that exist and that .dockerignore lets through", () => {
    const ignore = readFileSync(join(root, ".dockerignore"), "utf8")
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith("#"));
    expect(ignore).toEqual(expect.arrayContaining(["**/node_modules", "**/dist", ".git"]));
    const patterns = ignore.map(
      (p) =>
        new RegExp(
          `^${p
            .replace(/[.+^$()|[\]\\]/g, "\\$&")
            .replace(/\*\*\//g, "(.*/)?")
            .replace(/\*/g, "[^/]*")}(/.*)?$`,
        ),
    );
    const fromContext = stages.flatMap((s) => of(s, "COPY").map(copyParts)).filter((c) => c.from === undefined);
    expect(fromContext.length).toBeGreaterThan(3);
    for (const source of fromContext.flatMap((c) => c.sources).filter((s) => s !== ".")) {
      expect(existsSync(join(root, source)), source).toBe(true);
      expect(patterns.filter((p) => p.test(source)).map(String), `${source} is excluded by .dockerignore`).toEqual([]);
    }
  });
});
