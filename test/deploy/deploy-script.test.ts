// scripts/deploy.sh against a kubectl stand-in that plays a cluster's answers (test/deploy/harness.ts).
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import {
  command,
  createdJob,
  deploymentChanges,
  IMAGE,
  JOB_NAME,
  NAMESPACE,
  PREVIOUS,
  type Run,
  root,
  SECRET,
  useDeploy,
  VERSION,
  verbs,
} from "./harness.js";

const manifest = join(root, "k8s/yomu/migration-job.yaml");
const deploy = useDeploy();

describe("a migration Job that completes", () => {
  let run: Run;
  beforeAll(async () => {
    run = await deploy("complete");
  });

  it("exits 0, pages no one and writes a summary", () => {
    expect(run.code, run.stderr).toBe(0);
    expect(run.pages).toEqual([]);
    expect(run.summary).toContain("## Deploy to production: deployed");
  });

  it("creates the Job from k8s/yomu/migration-job.yaml under a unique name, with the digest and the version label", () => {
    const job = createdJob(run);
    expect(job.metadata.name).toMatch(JOB_NAME);
    expect(job.spec.template.metadata.labels["app.kubernetes.io/version"]).toBe(VERSION);
    expect(job.metadata.labels["app.kubernetes.io/version"]).toBe(VERSION);
    const migrate = job.spec.template.spec.containers.find((container: { name: string }) => container.name === "migrate");
    expect(migrate.image).toBe(IMAGE);

    // Everything else is the manifest's own business and reaches the cluster as written.
    const original = parseAllDocuments(readFileSync(manifest, "utf8"))
      .map((document) => document.toJSON())
      .find((document) => document?.kind === "Job");
    original.metadata.name = job.metadata.name;
    original.metadata.labels["app.kubernetes.io/version"] = VERSION;
    original.spec.template.metadata.labels["app.kubernetes.io/version"] = VERSION;
    for (const container of original.spec.template.spec.containers) if (container.name === "migrate") container.image = IMAGE;
    expect(job).toEqual(original);
  });

  it("talks to the environment's namespace only", () => {
    expect(run.calls.length).toBeGreaterThan(0);
    for (const call of run.calls) expect(call.args.slice(0, 2)).toEqual(["--namespace", NAMESPACE]);
  });

  it("migrates first, and rolls both containers to the digest only after the Job completed", () => {
    expect(verbs(run)).toEqual([
      "get deployment/yomu-api",
      "create --filename",
      "get job",
      "get job",
      "get job",
      "logs --selector",
      "set image",
      "rollout status",
    ]);
    expect(deploymentChanges(run)[0]).toEqual(["set", "image", "deployment/yomu-api", `api=${IMAGE}`, `wait-for-schema=${IMAGE}`]);
    expect(deploymentChanges(run)[1]).toEqual(["rollout", "status", "deployment/yomu-api", "--timeout", "300s"]);
    expect(run.deploymentImages).toEqual({ api: IMAGE, "wait-for-schema": IMAGE });
  });

  it("waits on the Job it created", () => {
    const name = createdJob(run).metadata.name;
    const polls = run.calls.map(command).filter((args) => args[0] === "get" && args[1] === "job");
    for (const poll of polls) expect(poll[2]).toBe(name);
  });
});

describe("a migration Job that fails", () => {
  let run: Run;
  beforeAll(async () => {
    run = await deploy("job-fails");
  });

  it("exits 10 and never changes the Deployment", () => {
    expect(run.code, run.stderr).toBe(10);
    expect(deploymentChanges(run)).toEqual([]);
    expect(run.deploymentImages).toEqual({ api: PREVIOUS, "wait-for-schema": PREVIOUS });
  });

  it("prints the Job's logs and the migrate container's exit code", () => {
    expect(run.stdout).toContain('"event":"migration.failed"');
    expect(run.stdout).toMatch(
      /::error title=deploy production::migration Job yomu-migration-\S+ failed \(migrate exited 1: a migration failed/,
    );
  });

  it("pages on-call once with what failed and what keeps running", () => {
    expect(run.pages).toHaveLength(1);
    const [page] = run.pages;
    expect(page?.path).toBe(`/hooks/${SECRET}`);
    expect(page?.contentType).toBe("application/json");
    expect(page?.body).toMatchObject({
      status: "migration_failed",
      environment: "production",
      namespace: NAMESPACE,
      image: IMAGE,
      version: VERSION,
      previousImage: PREVIOUS,
      migrationExitCode: 1,
    });
    expect(page?.body.job).toMatch(JOB_NAME);
    expect(page?.body.text).toContain("yomu deploy to production failed: migration Job");
  });

  it("writes the failure and the log tail into the job summary", () => {
    expect(run.summary).toContain("## Deploy to production: failed");
    expect(run.summary).toContain("| migrate exit code | 1 (a migration failed and was rolled back) |");
    expect(run.summary).toContain('"sqlstate":"42601"');
  });
});

describe("a migration Job that never finishes", () => {
  let run: Run;
  beforeAll(async () => {
    run = await deploy("job-hangs", { MIGRATION_TIMEOUT: "5" });
  });

  it("gives up at MIGRATION_TIMEOUT with exit 11, leaves the Job alone and the Deployment untouched", () => {
    expect(run.code, run.stderr).toBe(11);
    expect(deploymentChanges(run)).toEqual([]);
    expect(verbs(run)).not.toContain("delete job");
    expect(verbs(run).filter((verb) => verb === "get job").length).toBeGreaterThanOrEqual(2);
    expect(run.stdout).toContain("did not finish within 5s");
  });

  it("pages on-call with the timeout", () => {
    expect(run.pages.map((page) => page.body.status)).toEqual(["migration_timeout"]);
    expect(run.pages[0]?.body.migrationExitCode).toBeNull();
  });
});

describe("a rollout that fails", () => {
  it("is undone, waited for again, paged, and exits 12", async () => {
    const run = await deploy("rollout-fails");
    expect(run.code, run.stderr).toBe(12);
    expect(deploymentChanges(run).map((args) => args.slice(0, 2).join(" "))).toEqual([
      "set image",
      "rollout status",
      "rollout undo",
      "rollout status",
    ]);
    expect(run.deploymentImages).toEqual({ api: PREVIOUS, "wait-for-schema": PREVIOUS });
    expect(run.pages.map((page) => page.body.status)).toEqual(["rollout_failed"]);
    expect(run.pages[0]?.body.text).toContain(`failed and was undone; it is back on ${PREVIOUS}`);
    expect(run.summary).toContain("## Deploy to production: failed");
  });

  it("exits 13 and pages when the undo fails too", async () => {
    const run = await deploy("undo-fails");
    expect(run.code, run.stderr).toBe(13);
    expect(verbs(run)).toContain("rollout undo");
    expect(run.pages.map((page) => page.body.status)).toEqual(["rollout_undo_failed"]);
  });

  // Regression: undo steps back one revision, so after re-deploying the running image it would
  // have thrown away a good version for an older one.
  it("is not undone when the Deployment already ran this image", async () => {
    const run = await deploy("rollout-fails", { KUBECTL_CURRENT_IMAGE: IMAGE });
    expect(run.code, run.stderr).toBe(12);
    expect(verbs(run)).not.toContain("rollout undo");
    expect(run.deploymentImages).toEqual({ api: IMAGE, "wait-for-schema": IMAGE });
    expect(run.pages.map((page) => page.body.status)).toEqual(["rollout_failed"]);
  });
});

describe("kubectl itself failing", () => {
  it("exits 14 and pages when the Job cannot be created, before touching the Deployment", async () => {
    const run = await deploy("create-errors");
    expect(run.code, run.stderr).toBe(14);
    expect(run.stderr).toContain("Unauthorized");
    expect(deploymentChanges(run)).toEqual([]);
    expect(verbs(run)).not.toContain("get job");
    expect(run.pages.map((page) => page.body.status)).toEqual(["kubectl_error"]);
  });

  it("exits 14 and pages when the Deployment cannot be updated after the migration, with nothing to undo", async () => {
    const run = await deploy("set-image-errors");
    expect(run.code, run.stderr).toBe(14);
    expect(verbs(run)).toContain("create --filename");
    expect(verbs(run).at(-1)).toBe("set image");
    expect(run.deploymentImages).toEqual({ api: PREVIOUS, "wait-for-schema": PREVIOUS });
    expect(run.pages.map((page) => page.body.status)).toEqual(["kubectl_error"]);
    expect(run.pages[0]?.body.text).toContain(`migrated, but kubectl could not update deployment/yomu-api; it keeps running ${PREVIOUS}`);
  });

  it("exits 14 and pages when the cluster cannot be reached, before creating anything", async () => {
    const run = await deploy("unreachable");
    expect(run.code, run.stderr).toBe(14);
    expect(verbs(run)).toEqual(["get deployment/yomu-api"]);
    expect(run.pages.map((page) => page.body.status)).toEqual(["kubectl_error"]);
    expect(run.pages[0]?.body.job).toBe("");
  });
});

describe("a deploy stopped midway", () => {
  // GitHub stops the script with a signal when a person cancels the run or the job hits its
  // timeout-minutes; that is a failed deploy like any other.
  it("pages with how far it got and exits 143 on SIGTERM during the migration wait", async () => {
    const run = await deploy("job-hangs", { MIGRATION_TIMEOUT: "600" }, async (child, kubectlLog) => {
      while (!(existsSync(kubectlLog) && readFileSync(kubectlLog, "utf8").includes('"job","yomu-migration-'))) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      child.kill("SIGTERM");
    });
    expect(run.code).toBe(143);
    expect(deploymentChanges(run)).toEqual([]);
    expect(run.pages.map((page) => page.body.status)).toEqual(["interrupted"]);
    expect(run.pages[0]?.body.text).toMatch(
      /stopped by SIGTERM while migrating, before touching the Deployment; migration Job yomu-migration-/,
    );
    expect(run.summary).toContain("## Deploy to production: failed");
  });
});

describe("settings", () => {
  it("lists every problem at once, exits 2 and calls kubectl not once", async () => {
    const run = await deploy("complete", {
      DEPLOY_ENVIRONMENT: undefined,
      DEPLOY_NAMESPACE: "Yomu_Production",
      DEPLOY_IMAGE: "ghcr.io/takashiaihara/yomu-api:latest",
      DEPLOY_VERSION: "-nope-",
      ONCALL_WEBHOOK_URL: undefined,
      MIGRATION_JOB_MANIFEST: "/nonexistent/migration-job.yaml",
      MIGRATION_TIMEOUT: "5m",
      POLL_INTERVAL: "0",
    });
    expect(run.code).toBe(2);
    for (const name of [
      "DEPLOY_ENVIRONMENT",
      "DEPLOY_NAMESPACE",
      "DEPLOY_IMAGE must name the image by digest",
      "DEPLOY_VERSION",
      "ONCALL_WEBHOOK_URL",
      "MIGRATION_JOB_MANIFEST: no file at /nonexistent/migration-job.yaml",
      "MIGRATION_TIMEOUT",
      "POLL_INTERVAL",
    ]) {
      expect(run.stdout).toContain(name);
    }
    expect(run.calls).toEqual([]);
    expect(run.pages).toEqual([]);
  });

  it("pages a configuration error when the webhook is known", async () => {
    const run = await deploy("complete", { DEPLOY_IMAGE: "ghcr.io/takashiaihara/yomu-api:main" });
    expect(run.code).toBe(2);
    expect(run.calls).toEqual([]);
    expect(run.pages.map((page) => page.body.status)).toEqual(["config_error"]);
  });

  it("exits 2 naming the manifest when it has no migrate container, having created nothing", async () => {
    const dir = mkdtempSync(join(tmpdir(), "yomu-manifest-"));
    const broken = join(dir, "migration-job.yaml");
    try {
      writeFileSync(broken, readFileSync(manifest, "utf8").replace("- name: migrate", "- name: migrator"));
      const run = await deploy("complete", { MIGRATION_JOB_MANIFEST: broken });
      expect(run.code).toBe(2);
      expect(run.stderr).toContain(`${broken}: the Job has no container named migrate`);
      expect(verbs(run)).toEqual(["get deployment/yomu-api"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("the on-call webhook", () => {
  it("never appears in any output, and a webhook that is down does not change the exit code", async () => {
    const down = `http://127.0.0.1:9/hooks/${SECRET}`;
    const run = await deploy("job-fails", { ONCALL_WEBHOOK_URL: down });
    expect(run.code).toBe(10);
    expect(run.stdout).toContain("could not page on-call through ONCALL_WEBHOOK_URL");
    for (const output of [run.stdout, run.stderr, run.summary, JSON.stringify(run.calls)]) expect(output).not.toContain(SECRET);
  });

  it("stays out of the output of a failure that did page", async () => {
    const run = await deploy("rollout-fails");
    expect(run.pages).toHaveLength(1);
    for (const output of [run.stdout, run.stderr, run.summary, JSON.stringify(run.calls)]) expect(output).not.toContain(SECRET);
  });
});
