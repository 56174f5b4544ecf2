// What the delivery pipeline promises, pinned on the parsed workflows: approval before the
// production migration, migrate before deploy, the 300-second wait, one deploy per environment
// at a time, least privilege, pinned actions and a time limit on every job.
import { describe, expect, it } from "vitest";
import { environmentOf, type Job, needsOf, type Step, workflow, workflows } from "./workflows.js";

const deploy = workflow("deploy-k8s.yaml");
const ci = workflow("ci.yaml");
const deployStep = (job: Job): Step | undefined => job.steps.find((step) => step.run?.trim() === "scripts/deploy.sh");
const deployJobs = Object.entries(deploy.jobs).filter(([, job]) => deployStep(job) !== undefined);

describe("deploy-k8s.yaml", () => {
  it("deploys on every push to main and on nothing else", () => {
    expect(deploy.on).toEqual({ push: { branches: ["main"] } });
  });

  it("migrates and deploys staging and production, each in the job bound to its GitHub Environment", () => {
    const environments = deployJobs.map(([, job]) => [environmentOf(job), deployStep(job)?.env?.DEPLOY_ENVIRONMENT]);
    expect(environments).toEqual([
      ["staging", "staging"],
      ["production", "production"],
    ]);
  });

  it("runs the production migration only in the job with environment: production, after staging", () => {
    const production = deploy.jobs.production as Job;
    expect(production.environment).toEqual({ name: "production" });
    expect(needsOf(production)).toEqual(expect.arrayContaining(["build", "staging"]));
    // Nothing outside that job may touch the production cluster.
    for (const [id, job] of Object.entries(deploy.jobs)) {
      if (id === "production") continue;
      expect(JSON.stringify(job)).not.toContain("production");
    }
  });

  it("builds once and hands every environment the same image by digest", () => {
    const build = deploy.jobs.build as Job;
    const push = build.steps.find((step) => step.uses?.startsWith("docker/build-push-action@"));
    expect(push?.id).toBe("push");
    expect(push?.with).toMatchObject({ file: "apps/api/Dockerfile", push: true });
    expect(String(push?.with?.["build-args"])).toContain(`APP_VERSION=\${{ github.sha }}`);
    expect(deploy.text).toContain("IMAGE_REPOSITORY: ghcr.io/takashiaihara/yomu-api\n");
    expect(build.outputs?.image).toBe(`\${{ env.IMAGE_REPOSITORY }}@\${{ steps.push.outputs.digest }}`);
    for (const [, job] of deployJobs) {
      expect(needsOf(job)).toContain("build");
      expect(deployStep(job)?.env).toMatchObject({
        DEPLOY_IMAGE: `\${{ needs.build.outputs.image }}`,
        DEPLOY_VERSION: `\${{ needs.build.outputs.version }}`,
      });
    }
  });

  it("gives the script kubectl and the environment's kubeconfig secret before it runs", () => {
    for (const [, job] of deployJobs) {
      const index = (predicate: (step: Step) => boolean) => job.steps.findIndex(predicate);
      const kubectl = index((step) => step.uses?.startsWith("azure/setup-kubectl@") === true);
      const kubeconfig = index((step) => step.env?.KUBECONFIG_B64 === `\${{ secrets.KUBECONFIG_B64 }}`);
      const script = index((step) => step === deployStep(job));
      expect(kubectl).toBeGreaterThanOrEqual(0);
      expect(kubeconfig).toBeGreaterThan(kubectl);
      expect(script).toBeGreaterThan(kubeconfig);
      expect(job.steps[kubeconfig]?.run).toContain('>>"$GITHUB_ENV"');
    }
  });

  it("passes the 300-second migration wait, the rollout wait and the paging webhook to the script", () => {
    for (const [, job] of deployJobs) {
      expect(deployStep(job)?.env).toMatchObject({
        MIGRATION_TIMEOUT: 300,
        ROLLOUT_TIMEOUT: 300,
        ONCALL_WEBHOOK_URL: `\${{ secrets.ONCALL_WEBHOOK_URL }}`,
      });
      // The migration step is never skipped past or forced: the script decides, and a failure stops the job.
      expect(deployStep(job)?.if).toBeUndefined();
      expect(job.steps.every((step) => !String(step.if ?? "").includes("always()"))).toBe(true);
    }
  });

  it("leaves room in each deploy job's time limit for both 300-second waits", () => {
    for (const [, job] of deployJobs) expect(job["timeout-minutes"]).toBeGreaterThan(10);
  });

  it("runs one deploy per environment at a time and never cancels one halfway", () => {
    const groups = deployJobs.map(([, job]) => job.concurrency);
    expect(groups).toEqual([
      { group: "deploy-k8s-staging", "cancel-in-progress": false },
      { group: "deploy-k8s-production", "cancel-in-progress": false },
    ]);
  });

  it("keeps the two deploy jobs alike apart from the environment's own names", () => {
    const [staging, production] = deployJobs.map(([, job]) =>
      JSON.stringify({ steps: job.steps, runsOn: job["runs-on"], timeout: job["timeout-minutes"] }).replaceAll(
        environmentOf(job) ?? "?",
        "ENV",
      ),
    );
    expect(production).toBe(staging);
  });

  it("grants package writes to the build job alone", () => {
    expect(deploy.permissions).toEqual({ contents: "read" });
    expect(deploy.jobs.build?.permissions).toEqual({ contents: "read", packages: "write" });
    for (const [id, job] of Object.entries(deploy.jobs)) {
      if (id !== "build") expect(job.permissions).toBeUndefined();
    }
  });
});

describe("ci.yaml", () => {
  it("reads the repository and nothing more", () => {
    expect(ci.permissions).toEqual({ contents: "read" });
    for (const job of Object.values(ci.jobs)) expect(job.permissions).toBeUndefined();
  });

  it("installs pnpm 10.34.9 on Node 20, then lints, typechecks and tests against a PostgreSQL 15 service", () => {
    const runs = Object.values(ci.jobs).flatMap((job) => job.steps.map((step) => step.run?.trim()));
    for (const command of ["npm install -g pnpm@10.34.9", "pnpm install --frozen-lockfile", "pnpm lint", "pnpm typecheck", "pnpm test"]) {
      expect(runs).toContain(command);
    }
    for (const job of Object.values(ci.jobs)) {
      const node = job.steps.find((step) => step.uses?.startsWith("actions/setup-node@"));
      expect(node?.with?.["node-version"]).toBe(20);
    }
    const test = ci.jobs.test as Job;
    expect(test.services?.postgres?.image).toBe("postgres:15");
    expect(test.env?.DATABASE_URL).toBe("postgres://postgres:postgres@localhost:5432/postgres");
  });

  it("also runs the suite the README's way, on the embedded PostgreSQL with no DATABASE_URL", () => {
    const embedded = ci.jobs["test-embedded"] as Job;
    expect(embedded.services).toBeUndefined();
    expect(JSON.stringify(embedded)).not.toContain("DATABASE_URL");
    expect(embedded.steps.map((step) => step.run?.trim())).toContain("pnpm test");
  });

  it("also runs the suite on an embedded PostgreSQL 18, and the harness canary after the suites", () => {
    const pg18 = ci.jobs["test-embedded-18"] as Job;
    expect(pg18.env?.YOMU_EMBEDDED_PG).toBe(18);
    expect(JSON.stringify(pg18)).not.toContain("DATABASE_URL");
    expect(pg18.steps.map((step) => step.run?.trim())).toContain("pnpm test");
    for (const id of ["test", "test-embedded"]) {
      const runs = (ci.jobs[id] as Job).steps.map((step) => step.run?.trim());
      expect(runs.indexOf("scripts/harness-canary.sh"), id).toBeGreaterThan(runs.indexOf("pnpm test"));
    }
    // Every test job sets up its tools with the script `pnpm test` uses, never a copy of the list.
    for (const id of ["test", "test-embedded", "test-embedded-18"]) {
      const runs = (ci.jobs[id] as Job).steps.map((step) => step.run ?? "");
      expect(
        runs.some((run) => run.includes("scripts/system-tools.mjs")),
        id,
      ).toBe(true);
      expect(
        runs.some((run) => run.includes("apt-get")),
        id,
      ).toBe(false);
    }
  });

  it("reviews the migrations a change adds (lock plan and lint) against the base commit, whose history it fetches", () => {
    const job = ci.jobs["migration-review"] as Job;
    const checkout = job.steps.find((step) => step.uses?.startsWith("actions/checkout@"));
    expect(checkout?.with?.["fetch-depth"]).toBe(0);
    const review = job.steps.find((step) => step.run?.trim() === "scripts/migration-review.sh");
    expect(review?.env?.REVIEW_BASE).toBe(`\${{ github.event.pull_request.base.sha || github.event.before }}`);
    // plan builds its scratch copy on a real server: the job brings one.
    expect(job.services?.postgres?.image).toBe("postgres:15");
    expect(review?.env?.DATABASE_URL).toBe("postgres://postgres:postgres@localhost:5432/postgres");
    const build = job.steps.findIndex((step) => step.run?.trim() === "pnpm build");
    expect(build).toBeGreaterThanOrEqual(0);
    expect(job.steps.indexOf(review as Step)).toBeGreaterThan(build);
    // Findings fail the pull request.
    expect(review?.env?.LINT_FINDINGS).toBeUndefined();
  });
});

describe("the lock plan the production approver sees", () => {
  const review = deploy.jobs.review as Job;
  const step = review.steps.find((s) => s.run?.trim() === "scripts/migration-review.sh");

  it("is traced by the same script the pull request ran, on the commits this push adds", () => {
    expect(step?.env).toMatchObject({
      REVIEW_BASE: `\${{ github.event.before }}`,
      DATABASE_URL: "postgres://postgres:postgres@localhost:5432/postgres",
      LINT_FINDINGS: "report",
    });
    expect(review.services?.postgres?.image).toBe("postgres:15");
    expect(review.steps.find((s) => s.uses?.startsWith("actions/checkout@"))?.with?.["fetch-depth"]).toBe(0);
  });

  it("is finished, in the run's summary, before the production job can ask for approval", () => {
    expect(needsOf(deploy.jobs.production as Job)).toContain("review");
  });

  it("never reaches a cluster: no environment, no kubeconfig", () => {
    expect(review.environment).toBeUndefined();
    expect(JSON.stringify(review)).not.toContain("KUBECONFIG");
  });
});

describe.each(workflows.map((entry) => [entry.file, entry] as const))("%s", (_file, entry) => {
  it("pins every action by a full commit SHA with its version in a comment", () => {
    const uses = [...entry.text.matchAll(/^\s*(?:-\s+)?uses:\s*(.+)$/gm)].map((match) => match[1]?.trim() ?? "");
    expect(uses.length).toBeGreaterThan(0);
    for (const line of uses) expect(line).toMatch(/^[\w.-]+\/[\w./-]+@[0-9a-f]{40} # v\d+(\.\d+)*$/);
  });

  it("puts a time limit on every job", () => {
    for (const job of Object.values(entry.jobs)) {
      expect(job["timeout-minutes"]).toBeGreaterThan(0);
      expect(job["timeout-minutes"]).toBeLessThanOrEqual(60);
    }
  });

  it("never leaves the job's token in the checkout", () => {
    const checkouts = Object.values(entry.jobs).flatMap((job) => job.steps.filter((step) => step.uses?.startsWith("actions/checkout@")));
    expect(checkouts.length).toBeGreaterThan(0);
    for (const step of checkouts) expect(step.with?.["persist-credentials"]).toBe(false);
  });
});
