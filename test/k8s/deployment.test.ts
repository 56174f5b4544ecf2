import { spawnSync } from "node:child_process";
import { once } from "node:events";
import { connect, createServer } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../support/database.js";
import { freePort } from "../support/net.js";
import {
  argvOf,
  type ContainerRun,
  configMap,
  container,
  deployment,
  job,
  type LogLine,
  type Obj,
  podOf,
  resolveEnv,
  runContainer,
  startContainer,
  testSecret,
} from "./manifests.js";

const databases: TestDatabase[] = [];
afterAll(async () => {
  await Promise.all(databases.map((d) => d.drop()));
});

async function freshDatabase(): Promise<TestDatabase> {
  const db = await createTestDatabase("k8sdeploy");
  databases.push(db);
  return db;
}

function setEnv(c: Obj, name: string, value: string): void {
  const list = c.env as Obj[];
  const entry = list.find((e) => e.name === name);
  if (entry) {
    entry.value = value;
    delete entry.valueFrom;
  } else list.push({ name, value });
}

/** The pod template's containers with their environment resolved for a pod of the Deployment on `databaseUrl`. */
function deploymentPod(databaseUrl: string, patch: (pod: Obj) => void = () => {}) {
  const d = deployment();
  const pod = d.spec.template.spec;
  patch(pod);
  const ctx = { configMaps: [configMap()], secrets: [testSecret(databaseUrl)], pod: podOf(d.spec.template, "yomu-api-7d9c5b8f6-x2x4q") };
  const wait = container(pod, "wait-for-schema", "initContainers");
  const api = container(pod, "api");
  return { wait, waitEnv: resolveEnv(wait, ctx), api, apiEnv: resolveEnv(api, ctx) };
}

/** A short bound, so "waits, then fails at its bound" takes seconds. */
const shortWait = (seconds: number) => (pod: Obj) => {
  const wait = container(pod, "wait-for-schema", "initContainers");
  setEnv(wait, "SCHEMA_WAIT_SECONDS", String(seconds));
  setEnv(wait, "SCHEMA_POLL_SECONDS", "1");
};

function runMigrationJob(db: TestDatabase): Promise<ContainerRun> {
  const j = job();
  const migrate = container(j.spec.template.spec, "migrate");
  const env = resolveEnv(migrate, {
    configMaps: [configMap()],
    secrets: [testSecret(db.url)],
    pod: podOf(j.spec.template, "yomu-migration-x"),
  });
  delete env.PUSHGATEWAY_URL;
  return runContainer(migrate, env);
}

const named = (run: ContainerRun, event: string) => run.events.filter((e) => e.event === event);

describe("the wait-for-schema init container, as the manifest writes it", () => {
  it("is a POSIX sh script that passes shellcheck", () => {
    const [shell, flag, script] = argvOf(container(deployment().spec.template.spec, "wait-for-schema", "initContainers"));
    expect([shell, flag]).toEqual(["/bin/sh", "-c"]);
    const check = spawnSync("shellcheck", ["--shell=sh", "-"], { input: script, encoding: "utf8" });
    if (check.error) throw new Error(`shellcheck could not run (apt-get install shellcheck): ${check.error.message}`);
    expect(check.stdout).toBe("");
    expect(check.status).toBe(0);
  });

  it("before the migrations: gives up at its bound with exit 5", async () => {
    const db = await freshDatabase();
    const { wait, waitEnv } = deploymentPod(db.url, shortWait(2));
    const run = await runContainer(wait, waitEnv);
    expect(run.code).toBe(5);
    expect(run.otherLines).toEqual([]);
    // How many checks fit in the bound depends on the machine; that each one found the schema
    // behind, and each but the last was followed by another, does not.
    const checks = named(run, "migration.status");
    expect(checks.length).toBeGreaterThanOrEqual(1);
    for (const check of checks) expect(check).toMatchObject({ current: false });
    expect(named(run, "schema.wait.retry").length).toBe(checks.length - 1);
    expect(run.events.at(-1)).toMatchObject({ event: "schema.wait.timeout", severity: "ERROR" });
  });

  it("after the migration Job: passes at once, with a single check", async () => {
    const db = await freshDatabase();
    expect((await runMigrationJob(db)).code).toBe(0);
    const { wait, waitEnv } = deploymentPod(db.url);
    const run = await runContainer(wait, waitEnv);
    expect(run.code).toBe(0);
    expect(named(run, "migration.status")).toHaveLength(1);
    expect(named(run, "migration.status")[0]).toMatchObject({ current: true });
    expect(run.events.filter((e) => e.event.startsWith("schema.wait."))).toEqual([]);
  });

  it("lets the pod start as soon as a Job running alongside the rollout has finished", async () => {
    const db = await freshDatabase();
    const { wait, waitEnv } = deploymentPod(db.url, shortWait(120));
    let firstRetry = () => {};
    const retried = new Promise<void>((resolve) => {
      firstRetry = resolve;
    });
    const waiting = runContainer(wait, waitEnv, (e: LogLine) => {
      if (e.event === "schema.wait.retry") firstRetry();
    });
    await Promise.race([retried, waiting]);
    expect((await runMigrationJob(db)).code).toBe(0);
    const run = await waiting;
    expect(run.code).toBe(0);
    const checks = named(run, "migration.status");
    expect(checks.at(0)).toMatchObject({ current: false });
    expect(checks.at(-1)).toMatchObject({ current: true });
  });

  it("gives up on a database that stays unreachable with exit 7, not 5", async () => {
    const port = await freePort();
    const { wait, waitEnv } = deploymentPod(`postgres://postgres@127.0.0.1:${port}/nowhere`, (pod) => {
      shortWait(2)(pod);
      setEnv(container(pod, "wait-for-schema", "initContainers"), "MIGRATION_CONNECT_TIMEOUT", "1s");
    });
    const run = await runContainer(wait, waitEnv);
    expect(run.code).toBe(7);
    expect(run.events.at(-1)).toMatchObject({ event: "schema.wait.timeout" });
    expect(run.events.at(-1)?.message).toContain("last status exit 7");
  });

  it("keeps waiting through an unreachable database, and passes once it is back with its schema", async () => {
    const db = await freshDatabase();
    expect((await runMigrationJob(db)).code).toBe(0);
    // The database the pod sees is down (nothing listens on the port) until the first retry,
    // then reachable through a plain TCP relay to the test server.
    const port = await freePort();
    const target = new URL(db.url);
    const seen = new URL(db.url);
    seen.hostname = "127.0.0.1";
    seen.port = String(port);
    const { wait, waitEnv } = deploymentPod(seen.toString(), (pod) => {
      shortWait(120)(pod);
      setEnv(container(pod, "wait-for-schema", "initContainers"), "MIGRATION_CONNECT_TIMEOUT", "1s");
    });
    const relay = createServer((client) => {
      const upstream = connect(Number(target.port || 5432), target.hostname);
      client.pipe(upstream).pipe(client);
      client.on("error", () => upstream.destroy());
      upstream.on("error", () => client.destroy());
    });
    try {
      const run = await runContainer(wait, waitEnv, (e) => {
        if (e.event === "schema.wait.retry" && !relay.listening) relay.listen(port, "127.0.0.1");
      });
      expect(run.code).toBe(0);
      expect(run.events.find((e) => e.event === "schema.wait.retry")?.message).toContain("status exited 7");
      expect(named(run, "migration.status").at(-1)).toMatchObject({ current: true });
    } finally {
      relay.close();
    }
  });

  it("stops at once on a configuration error that waiting cannot fix", async () => {
    const { wait, waitEnv } = deploymentPod("mysql://user@db.example.invalid/yomu", shortWait(60));
    const run = await runContainer(wait, waitEnv);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("DATABASE_URL");
    expect(named(run, "schema.wait.retry")).toEqual([]);
    expect(run.events.at(-1)).toMatchObject({ event: "schema.wait.failed", severity: "ERROR" });
  });
});

describe("the api container, probed as the kubelet would", () => {
  it("is live at once, ready only after the migration Job, on the port the probes name", async () => {
    const db = await freshDatabase();
    const { api, apiEnv } = deploymentPod(db.url);
    expect(apiEnv).toEqual({ DATABASE_URL: db.url, PORT: "3000", LOG_FORMAT: "json" });
    // Each pod has its own network namespace; here the port must be one nobody else uses.
    const port = await freePort();
    const child = startContainer(api, { ...apiEnv, PORT: String(port) }, "ignore");
    const probe = async (name: "readinessProbe" | "livenessProbe") => {
      const get = api[name].httpGet as Obj;
      expect(api.ports.find((p: Obj) => p.name === get.port)?.containerPort).toBe(3000);
      return (await fetch(`http://127.0.0.1:${port}${get.path}`)).status;
    };
    try {
      await untilListening(port, child);
      expect(await probe("livenessProbe")).toBe(200);
      expect(await probe("readinessProbe")).toBe(503);
      expect((await runMigrationJob(db)).code).toBe(0);
      expect(await probe("readinessProbe")).toBe(200);
      expect(await probe("livenessProbe")).toBe(200);
    } finally {
      child.kill("SIGTERM");
      if (child.exitCode === null) await once(child, "exit");
    }
    expect(child.exitCode).toBe(0);
  });
});

async function untilListening(port: number, child: ReturnType<typeof startContainer>): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt++) {
    if (child.exitCode !== null) throw new Error(`the api exited with ${child.exitCode} before listening`);
    try {
      await fetch(`http://127.0.0.1:${port}/healthz`);
      return;
    } catch {
      await sleep(100);
    }
  }
  throw new Error(`the api never listened on ${port}`);
}
