import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";

/** The repository root: the image's WORKDIR /app holds the same layout. */
export const repoRoot = fileURLToPath(new URL("../..", import.meta.url));
export const yomuDir = join(repoRoot, "k8s/yomu");
export const monitoringDir = join(repoRoot, "k8s/monitoring");
export const IMAGE_WORKDIR = "/app";

// The manifests are plain YAML read as data; these types name only the fields the tests touch.
export type Obj = Record<string, any>;

/** Every document in a YAML file, failing on any syntax error or warning (a duplicate key, a tab). */
export function readManifests(path: string): Obj[] {
  const docs = parseAllDocuments(readFileSync(path, "utf8"), { uniqueKeys: true });
  if (!Array.isArray(docs)) return [];
  const problems = docs.flatMap((d) => [...d.errors, ...d.warnings].map((e) => `${path}: ${e.message}`));
  if (problems.length > 0) throw new Error(problems.join("\n"));
  return docs.map((d) => d.toJS() as Obj).filter((d) => d !== null);
}

/** The one object a manifest file holds. */
export function readManifest(path: string): Obj {
  const docs = readManifests(path);
  if (docs.length !== 1) throw new Error(`${path}: expected one document, found ${docs.length}`);
  return docs[0] as Obj;
}

export const job = () => readManifest(join(yomuDir, "migration-job.yaml"));
export const deployment = () => readManifest(join(yomuDir, "deployment.yaml"));
export const configMap = () => readManifest(join(yomuDir, "configmap.yaml"));
export const exampleSecret = () => readManifest(join(yomuDir, "secret.example.yaml"));

export function container(podSpec: Obj, name: string, list: "containers" | "initContainers" = "containers"): Obj {
  const found = (podSpec[list] as Obj[] | undefined)?.find((c) => c.name === name);
  if (!found) throw new Error(`no ${list} entry named ${name}`);
  return found;
}

export interface PodContext {
  configMaps: Obj[];
  secrets: Obj[];
  /** What the downward API would expose: the pod's metadata as the cluster fills it in. */
  pod: { name: string; namespace: string; labels: Record<string, string> };
}

/**
 * A container's environment as the kubelet would build it: `envFrom` first, then `env`, later
 * entries winning. References the tests do not know how to resolve are errors, so a manifest
 * cannot grow a dependency these tests silently ignore.
 */
export function resolveEnv(c: Obj, ctx: PodContext): Record<string, string> {
  const env: Record<string, string> = {};
  for (const source of (c.envFrom as Obj[] | undefined) ?? []) {
    if (source.configMapRef) Object.assign(env, mapData(findNamed(ctx.configMaps, source.configMapRef.name, "ConfigMap")));
    else if (source.secretRef) Object.assign(env, secretData(findNamed(ctx.secrets, source.secretRef.name, "Secret")));
    else throw new Error(`unsupported envFrom in ${c.name}: ${JSON.stringify(source)}`);
  }
  for (const entry of (c.env as Obj[] | undefined) ?? []) {
    if (entry.value !== undefined) {
      env[entry.name] = String(entry.value);
      continue;
    }
    const from = entry.valueFrom as Obj;
    if (from?.secretKeyRef)
      env[entry.name] = keyOf(secretData(findNamed(ctx.secrets, from.secretKeyRef.name, "Secret")), from.secretKeyRef);
    else if (from?.configMapKeyRef)
      env[entry.name] = keyOf(mapData(findNamed(ctx.configMaps, from.configMapKeyRef.name, "ConfigMap")), from.configMapKeyRef);
    else if (from?.fieldRef) env[entry.name] = fieldOf(ctx.pod, from.fieldRef.fieldPath);
    else throw new Error(`unsupported env source for ${entry.name} in ${c.name}: ${JSON.stringify(from)}`);
  }
  return env;
}

function findNamed(objects: Obj[], name: string, kind: string): Obj {
  const found = objects.find((o) => o.kind === kind && o.metadata?.name === name);
  if (!found) throw new Error(`${kind} ${name} is referenced but not provided`);
  return found;
}

function mapData(cm: Obj): Record<string, string> {
  return Object.fromEntries(Object.entries((cm.data ?? {}) as Record<string, unknown>).map(([k, v]) => [k, String(v)]));
}

function secretData(secret: Obj): Record<string, string> {
  const decoded = Object.entries((secret.data ?? {}) as Record<string, string>).map(([k, v]) => [k, Buffer.from(v, "base64").toString()]);
  return { ...Object.fromEntries(decoded), ...mapData({ data: secret.stringData }) };
}

function keyOf(data: Record<string, string>, ref: Obj): string {
  const value = data[ref.key];
  if (value === undefined) throw new Error(`key ${ref.key} missing from ${ref.name}`);
  return value;
}

function fieldOf(pod: PodContext["pod"], path: string): string {
  if (path === "metadata.name") return pod.name;
  if (path === "metadata.namespace") return pod.namespace;
  const label = /^metadata\.labels\['([^']+)'\]$/.exec(path);
  // The kubelet gives an empty value for a label the pod does not carry.
  if (label) return pod.labels[label[1] as string] ?? "";
  throw new Error(`unsupported fieldRef ${path}`);
}

/** The argv a container runs: `command` then `args`, as Kubernetes joins them. */
export function argvOf(c: Obj): string[] {
  const argv = [...((c.command as string[] | undefined) ?? []), ...((c.args as string[] | undefined) ?? [])];
  if (argv.length === 0) throw new Error(`${c.name} relies on the image's entrypoint; the tests need an explicit command`);
  return argv;
}

export interface LogLine {
  event: string;
  severity: string;
  [field: string]: unknown;
}

export interface ContainerRun {
  code: number | null;
  stdout: string;
  stderr: string;
  events: LogLine[];
  /** Stdout lines that are not JSON log lines. */
  otherLines: string[];
}

/**
 * Runs a container's command as a real process from the repository root (the image's /app) with
 * exactly the container's environment plus PATH, as the pod would, and collects its JSON logs;
 * `onEvent` sees each log line as it is written, with the process (to signal it, as the kubelet would).
 */
export function runContainer(
  c: Obj,
  env: Record<string, string>,
  onEvent: (e: LogLine, child: ChildProcess) => void = () => {},
): Promise<ContainerRun> {
  const child = startContainer(c, env);
  const events: LogLine[] = [];
  const otherLines: string[] = [];
  let stdout = "";
  let stderr = "";
  let partial = "";
  const take = (line: string) => {
    if (line.trim() === "") return;
    let parsed: LogLine | undefined;
    try {
      parsed = JSON.parse(line) as LogLine;
    } catch {}
    if (typeof parsed?.event !== "string") {
      otherLines.push(line);
      return;
    }
    events.push(parsed);
    onEvent(parsed, child);
  };
  child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
    stdout += chunk;
    const lines = (partial + chunk).split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) take(line);
  });
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk;
  });
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => {
      take(partial);
      resolve({ code, stdout, stderr, events, otherLines });
    });
  });
}

/** Starts a container's command (see runContainer) and leaves it running. */
export function startContainer(c: Obj, env: Record<string, string>, stdio: "pipe" | "ignore" = "pipe"): ChildProcess {
  if (c.workingDir !== IMAGE_WORKDIR) throw new Error(`${c.name}: workingDir ${c.workingDir}, expected ${IMAGE_WORKDIR}`);
  const [file, ...args] = argvOf(c) as [string, ...string[]];
  return spawn(file, args, { cwd: repoRoot, env: { PATH: process.env.PATH, ...env }, stdio: ["ignore", stdio, stdio] });
}

/** A copy of secret.example.yaml whose DATABASE_URL points at a test database. */
export function testSecret(databaseUrl: string): Obj {
  const secret = structuredClone(exampleSecret());
  secret.stringData.DATABASE_URL = databaseUrl;
  return secret;
}

/** What a pod of `template` would see through the downward API. */
export function podOf(template: Obj, name: string, namespace = "yomu-test"): PodContext["pod"] {
  return { name, namespace, labels: { ...(template.metadata?.labels ?? {}) } };
}
