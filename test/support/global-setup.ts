import { tmpdir } from "node:os";
import { join } from "node:path";
import { startEmbeddedPostgres } from "@yomu/dev-db";
import type { TestProject } from "vitest/node";
import type {} from "./database.js";

export default async function setup(project: TestProject) {
  const given = process.env.DATABASE_URL;
  if (given) {
    project.provide("adminUrl", given);
    project.provide("serverKind", "DATABASE_URL");
    return;
  }
  const server = await startEmbeddedPostgres({
    dataDir: join(tmpdir(), `yomu-test-pg-${process.pid}`),
    port: 55432,
    ephemeral: true,
  });
  project.provide("adminUrl", server.url);
  project.provide("serverKind", "embedded");
  return () => server.stop();
}
