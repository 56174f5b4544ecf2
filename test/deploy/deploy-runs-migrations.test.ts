// The whole path on a real PostgreSQL: the deploy creates the Job from k8s/yomu/migration-job.yaml,
// the stand-in cluster runs its migrate container for real (the built migrate.js, the env the
// manifest and k8s/yomu/configmap.yaml give it), and the script acts on the real exit code.
// T034: a release whose migration has invalid SQL is blocked and the schema stays as it was.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { createTestDatabase, type TestDatabase } from "../support/database.js";
import { createdJob, deploymentChanges, IMAGE, root, useDeploy } from "./harness.js";

const deploy = useDeploy();
const NEXT_IMAGE = `ghcr.io/takashiaihara/yomu-api@sha256:${"cd".repeat(32)}`;

let db: TestDatabase;
let dir: string;
let good: string;
let broken: string;

beforeAll(async () => {
  db = await createTestDatabase("deploy");
  dir = mkdtempSync(join(tmpdir(), "yomu-deploy-run-"));
  // The migrations two releases ship: this repository's, then the same plus one with a typo.
  good = join(dir, "release-1");
  cpSync(join(root, "drizzle/migrations"), good, { recursive: true });
  broken = join(dir, "release-2");
  cpSync(good, broken, { recursive: true });
  const journalFile = join(broken, "meta/_journal.json");
  const journal = JSON.parse(readFileSync(journalFile, "utf8"));
  const last = journal.entries.at(-1);
  journal.entries.push({
    idx: last.idx + 1,
    version: last.version,
    when: last.when + 60_000,
    tag: "29990101000000_probe",
    breakpoints: true,
  });
  writeFileSync(journalFile, JSON.stringify(journal, null, 2));
  writeFileSync(
    join(broken, "29990101000000_probe.sql"),
    'CREATE TABLE "deploy_probe" ("id" integer);\n--> statement-breakpoint\nSELEC 1;\n',
  );
});
afterAll(async () => {
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});

/** One cluster for both releases: the second deploy finds what the first one left. */
function cluster(migrations: string) {
  const config = parse(readFileSync(join(root, "k8s/yomu/configmap.yaml"), "utf8")).data;
  // This cluster has no monitoring namespace to push to.
  delete config.PUSHGATEWAY_URL;
  return {
    KUBECTL_STATE: join(dir, "cluster.json"),
    KUBECTL_IMAGE_ENV: JSON.stringify({ NODE_ENV: "production", MIGRATIONS_DIR: migrations }),
    KUBECTL_SECRETS: JSON.stringify({ "yomu-db": { DATABASE_URL: db.url } }),
    KUBECTL_CONFIGMAPS: JSON.stringify({ "yomu-config": config }),
    POLL_INTERVAL: "0.2",
  };
}

const latestRun = async () =>
  (await db.query("SELECT status, app_version, host, error FROM drizzle.migration_runs ORDER BY started_at DESC LIMIT 1")).rows[0];
const appliedCount = async () => Number((await db.query("SELECT count(*) AS n FROM drizzle.__drizzle_migrations")).rows[0]?.n);

describe("two releases through the deploy", () => {
  it("ships release 1: its migrations apply under the Job, recorded with the version label, then the Deployment rolls", async () => {
    const run = await deploy("run-job", { ...cluster(good), DEPLOY_IMAGE: IMAGE, DEPLOY_VERSION: "1.0.0" });
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toContain('"event":"migration.run.finished"');
    expect(await appliedCount()).toBe(1);
    expect(await latestRun()).toMatchObject({ status: "applied", app_version: "1.0.0", host: `${createdJob(run).metadata.name}-x7k2p` });
    expect(run.deploymentImages).toEqual({ api: IMAGE, "wait-for-schema": IMAGE });
    expect(run.pages).toEqual([]);
  });

  it("blocks release 2, whose migration has invalid SQL: exit 10, schema and Deployment as they were, on-call paged", async () => {
    // Another workflow run, as a second release is: the Job's name carries the run id, and both
    // deploys can fall in the same second on a fast machine.
    const run = await deploy("run-job", { ...cluster(broken), DEPLOY_IMAGE: NEXT_IMAGE, DEPLOY_VERSION: "1.1.0", GITHUB_RUN_ID: "4243" });
    expect(run.code, run.stdout + run.stderr).toBe(10);

    // The migrator's own report reached the deploy log and the summary.
    expect(run.stdout).toMatch(/\[pod\/yomu-migration-\S+\/migrate\] .*"event":"migration.failed".*"sqlstate":"42601"/);
    expect(run.summary).toContain("| migrate exit code | 1 (a migration failed and was rolled back) |");

    // Atomic: the statement before the typo is gone with it, and nothing new is recorded.
    expect((await db.query("SELECT to_regclass('public.deploy_probe') AS probe")).rows[0]?.probe).toBeNull();
    expect(await appliedCount()).toBe(1);
    expect(await latestRun()).toMatchObject({ status: "failed", app_version: "1.1.0" });

    // The Deployment keeps release 1.
    expect(deploymentChanges(run)).toEqual([]);
    expect(run.deploymentImages).toEqual({ api: IMAGE, "wait-for-schema": IMAGE });
    expect(run.pages).toHaveLength(1);
    expect(run.pages[0]?.body).toMatchObject({ status: "migration_failed", migrationExitCode: 1, previousImage: IMAGE, image: NEXT_IMAGE });
  });
});
