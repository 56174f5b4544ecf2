// The names scripts/deploy.sh and deploy-k8s.yaml rely on, checked against the manifests in
// k8s/yomu that someone else maintains: a rename there must fail here, not in a production deploy.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { root, workflow } from "../workflows/workflows.js";

const objects = (file: string) => parseAllDocuments(readFileSync(join(root, file), "utf8")).map((document) => document.toJSON());
interface Named {
  name: string;
  image?: string;
  env?: Named[];
  valueFrom?: unknown;
}
const byName = (list: Named[] | undefined, name: string) => list?.find((entry) => entry.name === name);

describe("k8s/yomu/deployment.yaml", () => {
  const deployment = objects("k8s/yomu/deployment.yaml").find((object) => object?.kind === "Deployment");

  it("has the Deployment and the two containers the deploy sets the image on", () => {
    expect(deployment?.metadata.name).toBe("yomu-api");
    const pod = deployment?.spec.template.spec;
    expect(byName(pod.containers, "api")?.image).toMatch(/^ghcr\.io\/takashiaihara\/yomu-api[:@]/);
    expect(byName(pod.initContainers, "wait-for-schema")?.image).toMatch(/^ghcr\.io\/takashiaihara\/yomu-api[:@]/);
  });
});

describe("k8s/yomu/migration-job.yaml", () => {
  const job = objects("k8s/yomu/migration-job.yaml").find((object) => object?.kind === "Job");

  it("hands the version label the deploy sets to the migrator as APP_VERSION", () => {
    const migrate = byName(job?.spec.template.spec.containers, "migrate");
    expect(byName(migrate?.env, "APP_VERSION")).toEqual({
      name: "APP_VERSION",
      valueFrom: { fieldRef: { fieldPath: "metadata.labels['app.kubernetes.io/version']" } },
    });
  });

  it("gives up no later than the workflow's migration wait, so no attempt outlives the decision", () => {
    const waits = Object.values(workflow("deploy-k8s.yaml").jobs).flatMap((entry) =>
      entry.steps.flatMap((step) => (step.env?.MIGRATION_TIMEOUT === undefined ? [] : [step.env.MIGRATION_TIMEOUT])),
    );
    expect(waits).toEqual([300, 300]);
    expect(job?.spec.activeDeadlineSeconds).toBeLessThan(300);
  });
});
