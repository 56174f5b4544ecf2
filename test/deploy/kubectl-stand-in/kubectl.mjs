// A kubectl that plays one namespace of a cluster for scripts/deploy.sh: a Deployment yomu-api
// with a revision history, and the migration Jobs the script creates. KUBECTL_SCENARIO picks how
// the cluster answers; every invocation (arguments, stdin) is appended to KUBECTL_LOG as a JSON
// line and the cluster's state lives in KUBECTL_STATE between invocations. Anything the script
// was not expected to ask exits 99, so a changed script fails its tests loudly.
//
// Scenarios: complete, job-fails, job-hangs, rollout-fails, undo-fails, create-errors, unreachable,
// set-image-errors, and run-job, where the Job's pod really runs: the migrate container's command and args, from
// the repository root (the image keeps the repository's layout under /app), with its env
// resolved as the kubelet would (values, the downward API, KUBECTL_SECRETS, KUBECTL_CONFIGMAPS)
// on top of KUBECTL_IMAGE_ENV, the ENV baked into the image being deployed.
import { spawn } from "node:child_process";
import { appendFileSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";

const repoRoot = fileURLToPath(new URL("../../..", import.meta.url));

const scenario = process.env.KUBECTL_SCENARIO ?? "complete";
const logFile = required("KUBECTL_LOG");
const stateFile = required("KUBECTL_STATE");

const CONDITIONS = 'jsonpath={range .status.conditions[*]}{.type}={.status}{"\\n"}{end}';
const API_IMAGE = 'jsonpath={.spec.template.spec.containers[?(@.name=="api")].image}';
const EXIT_CODES = 'jsonpath={range .items[*]}{.status.containerStatuses[?(@.name=="migrate")].state.terminated.exitCode}{"\\n"}{end}';

function required(name) {
  const value = process.env[name];
  if (!value) {
    process.stderr.write(`kubectl stand-in: ${name} is not set\n`);
    process.exit(99);
  }
  return value;
}

function loadState() {
  if (existsSync(stateFile)) return JSON.parse(readFileSync(stateFile, "utf8"));
  const image = process.env.KUBECTL_CURRENT_IMAGE ?? `ghcr.io/takashiaihara/yomu-api@sha256:${"1".repeat(64)}`;
  const older = `ghcr.io/takashiaihara/yomu-api@sha256:${"0".repeat(64)}`;
  return {
    revisions: [
      { api: older, "wait-for-schema": older },
      { api: image, "wait-for-schema": image },
    ],
    jobs: {},
  };
}

function answer(code, stdout = "", stderr = "") {
  writeFileSync(stateFile, JSON.stringify(state, null, 2));
  if (stdout) process.stdout.write(stdout);
  if (stderr) process.stderr.write(stderr);
  process.exit(code);
}

function unexpected() {
  answer(99, "", `kubectl stand-in: unexpected invocation: ${JSON.stringify(raw)}\n`);
}

const raw = process.argv.slice(2);
const stdin = raw.includes("-") ? readFileSync(0, "utf8") : null;
appendFileSync(logFile, `${JSON.stringify({ args: raw, stdin })}\n`);
const state = loadState();

// Global flags the script puts in front of every command.
let namespace = null;
const args = [];
for (let i = 0; i < raw.length; i++) {
  if (raw[i] === "--namespace") namespace = raw[++i];
  else if (raw[i]?.startsWith("--request-timeout=")) continue;
  else args.push(raw[i]);
}
if (namespace === null) answer(99, "", "kubectl stand-in: every call must name its namespace\n");
if (scenario === "unreachable") {
  answer(1, "", "The connection to the server 203.0.113.10:6443 was refused - did you specify the right host or port?\n");
}

/** Starts the Job's one pod in the background; its log and exit code land next to the state. */
function startPod(object) {
  const pod = `${object.metadata.name}-x7k2p`;
  const files = join(dirname(stateFile), pod);
  const labels = object.spec.template.metadata?.labels ?? {};
  const container = object.spec.template.spec.containers.find((entry) => entry.name === "migrate");
  const secrets = JSON.parse(process.env.KUBECTL_SECRETS ?? "{}");
  const configMaps = JSON.parse(process.env.KUBECTL_CONFIGMAPS ?? "{}");
  const env = { PATH: process.env.PATH, HOME: "/tmp", ...JSON.parse(process.env.KUBECTL_IMAGE_ENV ?? "{}") };
  const problems = [];
  for (const source of container.envFrom ?? []) {
    const data = configMaps[source.configMapRef?.name];
    if (data) Object.assign(env, data);
    else problems.push(`configmap "${source.configMapRef?.name}" not found`);
  }
  for (const entry of container.env ?? []) {
    const from = entry.valueFrom;
    const path = from?.fieldRef?.fieldPath;
    const label = path?.match(/^metadata\.labels\['(.+)'\]$/)?.[1];
    if (!from) env[entry.name] = entry.value;
    else if (path === "metadata.name") env[entry.name] = pod;
    else if (path === "metadata.namespace") env[entry.name] = namespace;
    else if (label !== undefined) env[entry.name] = labels[label] ?? "";
    else if (from.secretKeyRef) {
      const value = secrets[from.secretKeyRef.name]?.[from.secretKeyRef.key];
      if (value === undefined) problems.push(`secret "${from.secretKeyRef.name}" has no key ${from.secretKeyRef.key}`);
      env[entry.name] = value;
    } else problems.push(`cannot resolve env ${entry.name}`);
  }
  const argv = [...(container.command ?? []), ...(container.args ?? [])];
  // The pod never starts when its configuration cannot be resolved (CreateContainerConfigError).
  if (problems.length > 0 || argv.length === 0) return { pod, files, configError: problems.join("; ") || "no command" };
  spawn("sh", ["-c", '"$@" >"$0.log" 2>&1; echo $? >"$0.code.tmp" && mv "$0.code.tmp" "$0.code"', files, ...argv], {
    cwd: repoRoot,
    env,
    detached: true,
    stdio: "ignore",
  }).unref();
  return { pod, files };
}

/** A run-job pod: its exit code once it ended, else undefined. */
function podExit(entry) {
  const file = `${entry.files}.code`;
  return existsSync(file) ? Number(readFileSync(file, "utf8").trim()) : undefined;
}

const command = args.join(" ");
const current = state.revisions.at(-1);
const job = (name) => state.jobs[name] ?? answer(1, "", `Error from server (NotFound): jobs.batch "${name}" not found\n`);

if (command === `get deployment/yomu-api --output ${API_IMAGE}`) answer(0, current.api);

if (command === "create --filename -") {
  if (scenario === "create-errors") answer(1, "", "error: You must be logged in to the server (Unauthorized)\n");
  const names = [];
  for (const document of parseAllDocuments(stdin)) {
    const object = document.toJSON();
    if (object?.kind !== "Job") continue;
    const name = object.metadata.name;
    if (state.jobs[name]) answer(1, "", `Error from server (AlreadyExists): jobs.batch "${name}" already exists\n`);
    state.jobs[name] = scenario === "run-job" ? { polls: 0, ...startPod(object) } : { polls: 0 };
    names.push(`job.batch/${name} created\n`);
  }
  answer(0, names.join(""));
}

let match = command.match(/^get job (\S+) --output (.+)$/);
if (match?.[2] === CONDITIONS) {
  const entry = job(match[1]);
  entry.polls += 1;
  if (scenario === "run-job") {
    const code = podExit(entry);
    // A pod stuck in CreateContainerConfigError never ends: the Job just stays active.
    if (code === undefined) answer(0, "");
    answer(0, code === 0 ? "SuccessCriteriaMet=True\nComplete=True\n" : "FailureTarget=True\nFailed=True\n");
  }
  // A real Job shows no terminal condition on the first looks while its pod runs.
  if (entry.polls < 3 || scenario === "job-hangs") answer(0, "");
  if (scenario === "job-fails") answer(0, "FailureTarget=True\nFailed=True\n");
  answer(0, "SuccessCriteriaMet=True\nComplete=True\n");
}

match = command.match(/^logs --selector job-name=(\S+) --container migrate --prefix --tail 500$/);
if (match) {
  const entry = job(match[1]);
  if (entry.configError) {
    answer(
      1,
      "",
      `error: container "migrate" in pod "${entry.pod}" is waiting to start: CreateContainerConfigError (${entry.configError})\n`,
    );
  }
  if (scenario === "run-job") {
    const text = existsSync(`${entry.files}.log`) ? readFileSync(`${entry.files}.log`, "utf8") : "";
    const lines = text.split("\n").filter((line) => line !== "");
    answer(0, lines.map((line) => `[pod/${entry.pod}/migrate] ${line}\n`).join(""));
  }
  // --prefix: real kubectl names the pod and container in front of every line.
  const line = (event, fields) =>
    `[pod/${match[1]}-x7k2p/migrate] ${JSON.stringify({ severity: event.endsWith("failed") ? "ERROR" : "INFO", event, ...fields })}\n`;
  if (scenario === "job-fails") {
    answer(0, line("migration.failed", { tag: "0002_bad", statement: 1, sqlstate: "42601", error: "syntax error at or near SELEC" }));
  }
  if (scenario === "job-hangs") answer(0, line("migration.lock.waiting", { pid: 4711, applicationName: "yomu-migrate" }));
  answer(0, line("migration.run.finished", { status: "applied", applied: ["0001_init"] }));
}

match = command.match(/^get pods --selector job-name=(\S+) --sort-by \.metadata\.creationTimestamp --output (.+)$/);
if (match?.[2] === EXIT_CODES) {
  const entry = job(match[1]);
  if (scenario === "run-job") answer(0, `${podExit(entry) ?? ""}\n`);
  answer(0, scenario === "job-fails" ? "1\n" : "\n");
}

match = command.match(/^describe job (\S+)$/);
if (match) {
  job(match[1]);
  answer(0, `Name: ${match[1]}\nNamespace: ${namespace}\nEvents: <none>\n`);
}

match = command.match(/^set image deployment\/yomu-api (.+)$/);
if (match) {
  if (scenario === "set-image-errors") {
    answer(1, "", 'Error from server (Forbidden): deployments.apps "yomu-api" is forbidden: User "deployer" cannot patch resource\n');
  }
  const next = { ...current };
  for (const assignment of match[1].split(" ")) {
    const [container, image] = assignment.split("=");
    if (!(container in next)) answer(1, "", `error: unable to find container named "${container}"\n`);
    next[container] = image;
  }
  if (JSON.stringify(next) !== JSON.stringify(current)) state.revisions.push(next);
  answer(0, "deployment.apps/yomu-api image updated\n");
}

if (command.startsWith("rollout status deployment/yomu-api --timeout ")) {
  // In the failing scenarios the pods of whatever the script rolled out never become available;
  // once undone, the previous revision's pods are ready again.
  if ((scenario === "rollout-fails" || scenario === "undo-fails") && !state.undone) {
    answer(1, "", 'error: deployment "yomu-api" exceeded its progress deadline\n');
  }
  answer(0, 'deployment "yomu-api" successfully rolled out\n');
}

if (command === "rollout undo deployment/yomu-api") {
  if (scenario === "undo-fails") answer(1, "", "error: unable to find specified revision in history\n");
  state.revisions.push(state.revisions.at(-2));
  state.undone = true;
  answer(0, "deployment.apps/yomu-api rolled back\n");
}

unexpected();
