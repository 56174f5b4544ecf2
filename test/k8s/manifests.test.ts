import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { Deployment } from "kubernetes-models/apps/v1";
import { Job } from "kubernetes-models/batch/v1";
import { ConfigMap, Secret, Service } from "kubernetes-models/v1";
import { describe, expect, it } from "vitest";
import { parseConfig, settings } from "../../packages/migrator/src/config.js";
import { parseDuration } from "../../packages/migrator/src/duration.js";
import {
  argvOf,
  configMap,
  container,
  deployment,
  exampleSecret,
  job,
  type Obj,
  readManifest,
  readManifests,
  repoRoot,
  yomuDir,
} from "./manifests.js";

const IMAGE = "ghcr.io/takashiaihara/yomu-api";
const models: Record<string, new (data: any) => { validate(): void }> = {
  "batch/v1/Job": Job,
  "apps/v1/Deployment": Deployment,
  "v1/Service": Service,
  "v1/ConfigMap": ConfigMap,
  "v1/Secret": Secret,
};
const manifestFiles = readdirSync(yomuDir).filter((f) => f.endsWith(".yaml"));

describe("every manifest in k8s/yomu", () => {
  it("holds the files the deploy and the docs name", () => {
    for (const name of ["migration-job.yaml", "deployment.yaml", "service.yaml", "configmap.yaml", "secret.example.yaml"]) {
      expect(manifestFiles).toContain(name);
    }
  });

  it.each(manifestFiles.filter((f) => f !== "kustomization.yaml"))("%s parses and validates against the Kubernetes schema", (file) => {
    const docs = readManifests(join(yomuDir, file));
    expect(docs.length).toBeGreaterThan(0);
    for (const doc of docs) {
      const model = models[`${doc.apiVersion}/${doc.kind}`];
      expect(model, `${file}: no model for ${doc.apiVersion} ${doc.kind}`).toBeDefined();
      expect(() => new (model as NonNullable<typeof model>)(doc).validate()).not.toThrow();
      expect(doc.metadata.labels["app.kubernetes.io/part-of"]).toBe("yomu");
    }
  });

  it("validation has teeth: a typo in a field the schema knows is rejected", () => {
    const broken = job();
    broken.spec.template.spec.restartPolicy = "Nevr";
    broken.spec.template.spec.containers[0].resources.limits.memory = "lots";
    expect(() => new Job(broken).validate()).toThrow(/restartPolicy|memory/);
  });

  it("kustomization.yaml lists files that exist, and leaves out the Job and the example Secret", () => {
    const k = readManifest(join(yomuDir, "kustomization.yaml"));
    expect(k).toMatchObject({ apiVersion: "kustomize.config.k8s.io/v1beta1", kind: "Kustomization" });
    for (const file of k.resources as string[]) expect(existsSync(join(yomuDir, file)), file).toBe(true);
    expect(k.resources).toEqual(expect.arrayContaining(["configmap.yaml", "service.yaml", "deployment.yaml"]));
    // A Job's template is immutable: re-applying it for a new image would fail, so the deploy
    // creates a fresh copy instead; and the example Secret must never overwrite the real one.
    expect(k.resources).not.toContain("migration-job.yaml");
    expect(k.resources).not.toContain("secret.example.yaml");
  });
});

describe("migration Job (T009-T013)", () => {
  const j = job();
  const pod = j.spec.template.spec;
  const migrate = container(pod, "migrate");

  it("keeps the names the deploy workflow relies on", () => {
    expect(j.metadata.name).toBe("yomu-migration");
    const labels = {
      "app.kubernetes.io/name": "yomu-api",
      "app.kubernetes.io/component": "migration",
      "app.kubernetes.io/part-of": "yomu",
    };
    expect(j.metadata.labels).toMatchObject(labels);
    expect(j.spec.template.metadata.labels).toMatchObject(labels);
    expect(pod.containers).toHaveLength(1);
  });

  it("runs the CLI's one bundled file from the yomu-api image, from /app where its default folder is (T010)", () => {
    expect(migrate.image.split(":")[0]).toBe(IMAGE);
    expect(argvOf(migrate)).toEqual(["node", "packages/migrator/dist/yomu-migrate.mjs", "up"]);
    expect(migrate.workingDir).toBe("/app");
    // The file `pnpm build` writes (packages/migrator/bundle.mjs), and the default folder it reads from /app.
    expect(existsSync(join(repoRoot, "packages/migrator/dist/yomu-migrate.mjs"))).toBe(true);
    expect(settings.find((s) => s.key === "dir")?.fallback).toBe("drizzle/migrations");
    expect(migrate.env.map((e: Obj) => e.name)).not.toContain("MIGRATIONS_DIR");
  });

  it("takes its settings from the ConfigMap and the database URL from the Secret (T011)", () => {
    expect(migrate.envFrom).toEqual([{ configMapRef: { name: "yomu-config" } }]);
    const env = Object.fromEntries((migrate.env as Obj[]).map((e) => [e.name, e]));
    expect(env.DATABASE_URL.valueFrom).toEqual({ secretKeyRef: { name: "yomu-db", key: "DATABASE_URL" } });
    expect(exampleSecret().metadata.name).toBe("yomu-db");
    expect(Object.keys(exampleSecret().stringData)).toEqual(["DATABASE_URL"]);
    // Never a password in the manifest itself.
    expect(JSON.stringify(j)).not.toMatch(/postgres(ql)?:\/\//);
  });

  it("records who ran it and which release, from the downward API", () => {
    const env = Object.fromEntries((migrate.env as Obj[]).map((e) => [e.name, e]));
    expect(env.POD_NAME.valueFrom).toEqual({ fieldRef: { fieldPath: "metadata.name" } });
    expect(env.POD_NAMESPACE.valueFrom).toEqual({ fieldRef: { fieldPath: "metadata.namespace" } });
    expect(env.APP_VERSION.valueFrom).toEqual({ fieldRef: { fieldPath: "metadata.labels['app.kubernetes.io/version']" } });
    // The placeholder version label follows the placeholder tag until the deploy replaces both.
    expect(j.spec.template.metadata.labels["app.kubernetes.io/version"]).toBe(migrate.image.split(":")[1]);
  });

  it("asks for 128Mi/100m and is capped at 256Mi/200m (T012)", () => {
    expect(migrate.resources).toEqual({ requests: { memory: "128Mi", cpu: "100m" }, limits: { memory: "256Mi", cpu: "200m" } });
  });

  it("retries three times, is cleaned up after five minutes and never restarts in place (T013)", () => {
    expect(j.spec.backoffLimit).toBe(3);
    expect(j.spec.ttlSecondsAfterFinished).toBe(300);
    expect(pod.restartPolicy).toBe("Never");
    expect(j.spec.activeDeadlineSeconds).toBeGreaterThan(0);
  });

  it("gives up waiting for the lock or the database before Kubernetes kills it, so the exit code says why", () => {
    const data = configMap().data as Record<string, string>;
    const lockWait = parseDuration(data.MIGRATION_LOCK_WAIT_TIMEOUT as string) as number;
    const connect = parseDuration(data.MIGRATION_CONNECT_TIMEOUT as string) as number;
    const statement = parseDuration(data.MIGRATION_STATEMENT_TIMEOUT as string) as number;
    expect(lockWait + connect).toBeLessThan(j.spec.activeDeadlineSeconds * 1000);
    expect(statement).toBeLessThan(j.spec.activeDeadlineSeconds * 1000);
  });

  it("fails at once on exit codes a retry cannot fix, and retries the ones it can", () => {
    const rules = j.spec.podFailurePolicy.rules as Obj[];
    // The first match wins, and SIGTERM from a drain also ends in exit 1: Ignore must come first.
    expect(rules.map((r) => r.action)).toEqual(["Ignore", "FailJob"]);
    const failJob = rules.find((r) => r.action === "FailJob");
    expect(failJob?.onExitCodes).toEqual({ containerName: "migrate", operator: "In", values: [1, 2, 4] });
    // 3 (lock wait timeout) and 7 (unreachable) must stay retryable.
    for (const rule of rules) expect(rule.onExitCodes?.values ?? []).not.toEqual(expect.arrayContaining([3]));
    for (const rule of rules) expect(rule.onExitCodes?.values ?? []).not.toEqual(expect.arrayContaining([7]));
    expect(rules).toContainEqual({ action: "Ignore", onPodConditions: [{ type: "DisruptionTarget", status: "True" }] });
  });
});

describe("hardening of every pod (Job and Deployment)", () => {
  const pods: Array<[string, Obj]> = [
    ["migration-job.yaml", job().spec.template.spec],
    ["deployment.yaml", deployment().spec.template.spec],
  ];

  it.each(pods)("%s runs as uid 10001 with no token and the runtime's seccomp profile", (_file, pod) => {
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.securityContext).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 10001,
      runAsGroup: 10001,
      seccompProfile: { type: "RuntimeDefault" },
    });
    expect(pod.hostNetwork ?? false).toBe(false);
    expect(pod.hostPID ?? false).toBe(false);
  });

  it.each(pods)("%s: every container is read-only, unprivileged, without capabilities, limited, with /tmp on an emptyDir", (_file, pod) => {
    const all = [...((pod.initContainers as Obj[] | undefined) ?? []), ...(pod.containers as Obj[])];
    const emptyDirs = new Set((pod.volumes as Obj[]).filter((v) => v.emptyDir).map((v) => v.name));
    for (const c of all) {
      expect(c.securityContext, c.name).toEqual({
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ["ALL"] },
      });
      expect(c.securityContext.privileged, c.name).toBeUndefined();
      expect(c.resources?.limits?.memory, c.name).toBeDefined();
      expect(c.resources?.limits?.cpu, c.name).toBeDefined();
      expect(c.resources?.requests?.memory, c.name).toBeDefined();
      const tmp = (c.volumeMounts as Obj[]).find((m) => m.mountPath === "/tmp");
      expect(tmp && emptyDirs.has(tmp.name), `${c.name} needs a writable /tmp`).toBe(true);
      expect(c.image.split(":")[0], c.name).toBe(IMAGE);
    }
  });
});

describe("ConfigMap yomu-config", () => {
  const data = configMap().data as Record<string, string>;

  it("is a configuration the migrator accepts as is", () => {
    expect(configMap().metadata.name).toBe("yomu-config");
    const parsed = parseConfig(["up"], { ...data, DATABASE_URL: "postgres://u@db.example.invalid/yomu" }, { isTTY: false });
    expect(parsed.ok ? [] : parsed.problems).toEqual([]);
    const known = new Set(settings.map((s) => s.env));
    for (const key of Object.keys(data)) expect(known.has(key) || key === "LOG_FORMAT", key).toBe(true);
  });

  it("holds the Pushgateway address, JSON logs and the 30s slow threshold (plan.md)", () => {
    expect(new URL(data.PUSHGATEWAY_URL as string).protocol).toBe("http:");
    expect(data.LOG_FORMAT).toBe("json");
    expect(parseDuration(data.MIGRATION_SLOW_THRESHOLD as string)).toBe(30_000);
  });

  it("carries no connection string: that belongs to the Secret", () => {
    expect(data.DATABASE_URL).toBeUndefined();
    expect(JSON.stringify(data)).not.toMatch(/postgres(ql)?:\/\//);
  });
});

describe("the example Secret", () => {
  it("is obviously fake, and a real secret.yaml would be ignored by git", () => {
    const url = exampleSecret().stringData.DATABASE_URL as string;
    expect(url).toMatch(/CHANGE-ME/);
    expect(new URL(url).hostname).toMatch(/\.invalid$/);
    const ignored = execFileSync("git", ["check-ignore", "--no-index", "k8s/yomu/secret.yaml"], { cwd: repoRoot, encoding: "utf8" });
    expect(ignored.trim()).toBe("k8s/yomu/secret.yaml");
  });
});

describe("Deployment and Service yomu-api", () => {
  const d = deployment();
  const pod = d.spec.template.spec;
  const api = container(pod, "api");
  const wait = container(pod, "wait-for-schema", "initContainers");
  const service = readManifest(join(yomuDir, "service.yaml"));

  it("never takes a serving pod away before its replacement is ready", () => {
    expect(d.metadata.name).toBe("yomu-api");
    expect(d.spec.strategy).toMatchObject({ type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0 } });
    expect(d.spec.strategy.rollingUpdate.maxSurge).not.toBe(0);
  });

  it("serves on port 3000 named http, probed on /readyz and /healthz", () => {
    expect(api.ports).toEqual([{ name: "http", containerPort: 3000, protocol: "TCP" }]);
    expect(api.readinessProbe.httpGet).toEqual({ path: "/readyz", port: "http" });
    expect(api.livenessProbe.httpGet).toEqual({ path: "/healthz", port: "http" });
    expect(argvOf(api)).toEqual(["node", "apps/api/dist/main.js"]);
  });

  it("holds every pod in an init container until `status --require-current` passes, within a bound", () => {
    expect(pod.initContainers.map((c: Obj) => c.name)).toEqual(["wait-for-schema"]);
    const script = argvOf(wait).join(" ");
    expect(script).toContain("node packages/migrator/dist/yomu-migrate.mjs status --require-current");
    const env = Object.fromEntries((wait.env as Obj[]).map((e) => [e.name, e.value]));
    const bound = Number(env.SCHEMA_WAIT_SECONDS);
    expect(bound).toBeGreaterThan(0);
    // Longer than the Job may run (so a Job started with the rollout can finish), shorter than
    // the rollout's own deadline (so the pods say why before the rollout is declared failed).
    expect(bound).toBeGreaterThan(job().spec.activeDeadlineSeconds);
    expect(bound).toBeLessThan(d.spec.progressDeadlineSeconds);
    expect(Number(env.SCHEMA_POLL_SECONDS)).toBeGreaterThan(0);
  });

  it("selects the API's pods and never the migration Job's", () => {
    const matches = (selector: Record<string, string>, labels: Record<string, string>) =>
      Object.entries(selector).every(([k, v]) => labels[k] === v);
    expect(service.metadata.name).toBe("yomu-api");
    expect(service.spec.selector).toEqual(d.spec.selector.matchLabels);
    expect(matches(service.spec.selector, d.spec.template.metadata.labels)).toBe(true);
    expect(matches(service.spec.selector, job().spec.template.metadata.labels)).toBe(false);
    expect(service.spec.ports).toEqual([{ name: "http", port: 3000, targetPort: "http", protocol: "TCP" }]);
  });
});

describe("outside k8s/yomu", () => {
  it("every YAML file under k8s/ passes yamllint (default rules, the repository's 140-column width)", () => {
    const config = "{extends: default, rules: {line-length: {max: 140}, document-start: disable}}";
    const lint = spawnSync("yamllint", ["-f", "parsable", "-s", "-d", config, "k8s"], { cwd: repoRoot, encoding: "utf8" });
    if (lint.error) throw new Error(`yamllint could not run (apt-get install yamllint): ${lint.error.message}`);
    expect(lint.stdout).toBe("");
    expect(lint.status).toBe(0);
  });

  it("no real Secret is committed anywhere", () => {
    const tracked = execFileSync("git", ["ls-files", "k8s"], { cwd: repoRoot, encoding: "utf8" }).split("\n");
    expect(tracked.filter((f) => /(^|\/)secret\.ya?ml$/.test(f))).toEqual([]);
  });
});
