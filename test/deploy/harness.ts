// Runs scripts/deploy.sh the way the workflow does, against the kubectl stand-in
// (test/deploy/kubectl-stand-in) first on PATH, with the on-call webhook pointed at an HTTP
// server on 127.0.0.1 that records every page.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll } from "vitest";
import { parseAllDocuments } from "yaml";

export const root = fileURLToPath(new URL("../..", import.meta.url));
const script = join(root, "scripts/deploy.sh");
const standIn = join(root, "test/deploy/kubectl-stand-in/bin");

export const IMAGE = `ghcr.io/takashiaihara/yomu-api@sha256:${"ab".repeat(32)}`;
export const PREVIOUS = `ghcr.io/takashiaihara/yomu-api@sha256:${"1".repeat(64)}`;
export const VERSION = "3f2c9e1";
export const NAMESPACE = "yomu-production";
// Stands for the secret part of a real webhook URL: it must never show up in any output.
export const SECRET = "T0KEN-do-not-print-9f8e7d";
export const JOB_NAME = /^yomu-migration-\d{14}-4242-3$/;

export interface Page {
  path: string;
  contentType: string | undefined;
  body: Record<string, unknown>;
}
export interface Call {
  args: string[];
  stdin: string | null;
}
export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  calls: Call[];
  pages: Page[];
  summary: string;
  deploymentImages: Record<string, string>;
}
export type Deploy = (
  scenario: string,
  env?: Record<string, string | undefined>,
  whileRunning?: (child: ChildProcess, kubectlLog: string) => Promise<void>,
) => Promise<Run>;

/** Starts the webhook for the calling test file and returns a deploy function that uses it. */
export function useDeploy(): Deploy {
  const pages: Page[] = [];
  let webhookUrl = "";
  const server = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk) => {
      body += chunk;
    });
    request.on("end", () => {
      pages.push({ path: request.url ?? "", contentType: request.headers["content-type"], body: JSON.parse(body) });
      response.writeHead(200).end("ok");
    });
  });
  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    webhookUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/${SECRET}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  // Async on purpose: the webhook server answers on this process's event loop while the script runs.
  return async (scenario, env = {}, whileRunning) => {
    const dir = mkdtempSync(join(tmpdir(), "yomu-deploy-"));
    const log = join(dir, "kubectl.log");
    const summary = join(dir, "summary.md");
    // A test may keep one cluster across several deploys by passing its own KUBECTL_STATE.
    const state = env.KUBECTL_STATE ?? join(dir, "cluster.json");
    pages.length = 0;
    try {
      const child = spawn("bash", [script], {
        env: {
          PATH: `${standIn}:${process.env.PATH}`,
          HOME: dir,
          KUBECTL_SCENARIO: scenario,
          KUBECTL_LOG: log,
          KUBECTL_STATE: state,
          KUBECTL_CURRENT_IMAGE: PREVIOUS,
          DEPLOY_ENVIRONMENT: "production",
          DEPLOY_NAMESPACE: NAMESPACE,
          DEPLOY_IMAGE: IMAGE,
          DEPLOY_VERSION: VERSION,
          ONCALL_WEBHOOK_URL: webhookUrl,
          // Generous, so a loaded machine never turns a finishing Job into a timeout; the test
          // of the timeout sets its own.
          MIGRATION_TIMEOUT: "120",
          POLL_INTERVAL: "0.1",
          GITHUB_RUN_ID: "4242",
          GITHUB_RUN_ATTEMPT: "3",
          GITHUB_STEP_SUMMARY: summary,
          ...env,
        },
      });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (chunk) => {
        stdout += chunk;
      });
      child.stderr.on("data", (chunk) => {
        stderr += chunk;
      });
      const closed = new Promise<number | null>((resolve) => child.on("close", resolve));
      await whileRunning?.(child, log);
      const code = await closed;
      const calls = existsSync(log)
        ? readFileSync(log, "utf8")
            .trim()
            .split("\n")
            .map((line) => JSON.parse(line) as Call)
        : [];
      const cluster = existsSync(state) ? JSON.parse(readFileSync(state, "utf8")) : { revisions: [{}] };
      return {
        code,
        stdout,
        stderr,
        calls,
        pages: [...pages],
        summary: existsSync(summary) ? readFileSync(summary, "utf8") : "",
        deploymentImages: cluster.revisions.at(-1),
      };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

/** The command after the global flags, e.g. ["set", "image", "deployment/yomu-api", ...]. */
export function command(call: Call): string[] {
  return call.args.filter((arg, i, all) => arg !== "--namespace" && all[i - 1] !== "--namespace" && !arg.startsWith("--request-timeout"));
}
export const verbs = (run: Run) => run.calls.map((call) => command(call).slice(0, 2).join(" "));
/** Every call that could change the Deployment: anything naming it except reading it. */
export const deploymentChanges = (run: Run) =>
  run.calls.map(command).filter((args) => args.some((arg) => arg.includes("deployment")) && args[0] !== "get");
export const createdJob = (run: Run) => {
  const create = run.calls.find((call) => command(call)[0] === "create");
  const documents = parseAllDocuments(create?.stdin ?? "").map((document) => document.toJSON());
  return documents.find((document) => document?.kind === "Job");
};
