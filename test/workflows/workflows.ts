// The workflows under .github/workflows, read once for the workflow tests.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";

export const root = fileURLToPath(new URL("../..", import.meta.url));
const dir = join(root, ".github/workflows");

export interface Step {
  name?: string;
  id?: string;
  uses?: string;
  run?: string;
  if?: string;
  with?: Record<string, unknown>;
  env?: Record<string, unknown>;
}
export interface Job {
  name?: string;
  needs?: string | string[];
  "runs-on": string;
  "timeout-minutes"?: number;
  permissions?: Record<string, string>;
  environment?: string | { name: string; url?: string };
  concurrency?: { group: string; "cancel-in-progress"?: boolean };
  services?: Record<string, { image: string; env?: Record<string, string> }>;
  env?: Record<string, string>;
  outputs?: Record<string, string>;
  steps: Step[];
}
export interface Workflow {
  file: string;
  text: string;
  on: Record<string, unknown>;
  permissions?: Record<string, string>;
  concurrency?: { group: string; "cancel-in-progress"?: boolean };
  jobs: Record<string, Job>;
}

export const workflows: Workflow[] = readdirSync(dir)
  .filter((file) => /\.ya?ml$/.test(file))
  .sort()
  .map((file) => {
    const text = readFileSync(join(dir, file), "utf8");
    return { file: `.github/workflows/${file}`, text, ...parse(text) };
  });

export function workflow(name: string): Workflow {
  const found = workflows.find((candidate) => candidate.file === `.github/workflows/${name}`);
  if (!found) throw new Error(`no .github/workflows/${name}`);
  return found;
}

export const needsOf = (job: Job): string[] => (job.needs === undefined ? [] : Array.isArray(job.needs) ? job.needs : [job.needs]);
export const environmentOf = (job: Job): string | undefined =>
  typeof job.environment === "string" ? job.environment : job.environment?.name;
