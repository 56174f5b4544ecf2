// scripts/render-migration-job.mjs turns k8s/yomu/migration-job.yaml into one deploy's Job.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Job } from "kubernetes-models/batch/v1";
import { afterAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";

const root = fileURLToPath(new URL("../..", import.meta.url));
const renderer = join(root, "scripts/render-migration-job.mjs");
const manifest = join(root, "k8s/yomu/migration-job.yaml");
const IMAGE = `ghcr.io/takashiaihara/yomu-api@sha256:${"c".repeat(64)}`;
const dir = mkdtempSync(join(tmpdir(), "yomu-render-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function render(file: string, args: string[] = ["--name", "yomu-migration-20261121204718-42-1", "--image", IMAGE, "--version", "1.0"]) {
  const result = spawnSync(process.execPath, [renderer, "--manifest", file, ...args], { encoding: "utf8" });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}
function variant(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}
const original = readFileSync(manifest, "utf8");

describe("rendering k8s/yomu/migration-job.yaml", () => {
  const result = render(manifest);
  const documents = parseAllDocuments(result.stdout).map((document) => document.toJSON());

  it("gives a Job that passes the Kubernetes schema", () => {
    expect(result.code, result.stderr).toBe(0);
    expect(documents).toHaveLength(1);
    const job = new Job(documents[0]);
    expect(() => job.validate()).not.toThrow();
    expect(job.metadata?.name).toBe("yomu-migration-20261121204718-42-1");
    expect(job.spec?.template.spec?.containers.find((container) => container.name === "migrate")?.image).toBe(IMAGE);
  });

  it("keeps a version that looks like a number a string label", () => {
    expect(documents[0].spec.template.metadata.labels["app.kubernetes.io/version"]).toBe("1.0");
  });

  it("keeps the manifest's comments for whoever reads the applied object", () => {
    expect(result.stdout).toContain("# The deploy sets this to the release");
  });
});

describe("a manifest the deploy cannot use", () => {
  it("exits 2 naming the file when the Job is not yomu-migration", () => {
    const file = variant("renamed.yaml", original.replace("name: yomu-migration\n", "name: migrations\n"));
    const result = render(file);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`${file}: the Job is named "migrations", expected yomu-migration`);
    expect(result.stdout).toBe("");
  });

  it("exits 2 when the file holds two Jobs", () => {
    const file = variant("two.yaml", `${original}\n---\n${original}`);
    const result = render(file);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`${file}: expected exactly one Job, found 2`);
  });

  it("exits 2 with the YAML error's place when the file does not parse", () => {
    const file = variant("broken.yaml", "kind: Job\nmetadata: [unclosed\n");
    const result = render(file);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(new RegExp(`${file}: document 1: .*line`));
  });

  it("exits 2 listing every missing argument", () => {
    const result = render(manifest, []);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("--name is required");
    expect(result.stderr).toContain("--image is required");
    expect(result.stderr).toContain("--version is required");
  });
});
