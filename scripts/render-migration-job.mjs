#!/usr/bin/env node
// Renders the migration Job manifest for one deploy: a unique name (a Job's pod template is
// immutable, so every deploy needs a new Job), the image by digest, and the version label the
// migrate container reads back through the downward API. Prints YAML on stdout for
// `kubectl apply -f -`; comments and every other document in the file are kept as they are.
//
//   node scripts/render-migration-job.mjs --manifest k8s/yomu/migration-job.yaml \
//     --name yomu-migration-20261121204718-42-1 --image ghcr.io/o/yomu-api@sha256:<64 hex> --version 1.4.0
//
// Exit 2 when an argument or the manifest is unusable, naming what and where.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { parseAllDocuments } from "yaml";

const JOB_NAME = "yomu-migration";
const CONTAINER = "migrate";
const VERSION_LABEL = "app.kubernetes.io/version";

function fail(problems) {
  for (const problem of problems) process.stderr.write(`render-migration-job: ${problem}\n`);
  process.exit(2);
}

let values;
try {
  ({ values } = parseArgs({
    options: { manifest: { type: "string" }, name: { type: "string" }, image: { type: "string" }, version: { type: "string" } },
    strict: true,
  }));
} catch (error) {
  fail([error.message]);
}

const problems = [];
for (const key of ["manifest", "name", "image", "version"]) {
  if (!values[key]) problems.push(`--${key} is required`);
}
if (problems.length > 0) fail(problems);
const { manifest, name, image, version } = values;

let text;
try {
  text = readFileSync(manifest, "utf8");
} catch (error) {
  fail([`cannot read ${manifest}: ${error.message}`]);
}

const documents = parseAllDocuments(text);
if (!Array.isArray(documents)) fail([`${manifest}: empty file`]);
for (const [index, document] of documents.entries()) {
  for (const error of document.errors) problems.push(`${manifest}: document ${index + 1}: ${error.message}`);
}
if (problems.length > 0) fail(problems);

const jobs = documents.filter((document) => document.get("kind") === "Job");
if (jobs.length !== 1) fail([`${manifest}: expected exactly one Job, found ${jobs.length}`]);
const job = jobs[0];

if (job.getIn(["metadata", "name"]) !== JOB_NAME) {
  problems.push(`${manifest}: the Job is named ${JSON.stringify(job.getIn(["metadata", "name"]))}, expected ${JOB_NAME}`);
}
const containers = job.getIn(["spec", "template", "spec", "containers"])?.toJSON?.() ?? [];
const containerIndex = containers.findIndex((container) => container?.name === CONTAINER);
if (containerIndex < 0) problems.push(`${manifest}: the Job has no container named ${CONTAINER}`);
if (problems.length > 0) fail(problems);

job.setIn(["metadata", "name"], name);
job.setIn(["metadata", "labels", VERSION_LABEL], version);
job.setIn(["spec", "template", "metadata", "labels", VERSION_LABEL], version);
job.setIn(["spec", "template", "spec", "containers", containerIndex, "image"], image);

process.stdout.write(documents.map((document) => document.toString({ flowCollectionPadding: false })).join("---\n"));
