import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { freePort } from "../../../test/support/net.js";
import { type EmbeddedServer, startEmbeddedPostgres } from "../../dev-db/dist/index.js";
import { drizzleRows, eventsNamed, only, runCli, startCli, tableExists } from "./support/cli.js";
import { MigrationsFolder } from "./support/migrations.js";

const folder = new MigrationsFolder([{ name: "things", statements: ["CREATE TABLE things (id serial PRIMARY KEY);"] }]);
let server: EmbeddedServer | undefined;
afterAll(async () => {
  await server?.stop();
  folder.remove();
});

describe("a database that is not up yet", () => {
  it("is waited for, with migration.db.waiting events, and migrated once it comes up", { timeout: 120_000 }, async () => {
    const port = await freePort();
    const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
    const runner = startCli(["up", "--connect-timeout", "90s"], { DATABASE_URL: url, MIGRATIONS_DIR: folder.dir });
    const waiting = await runner.waitFor("migration.db.waiting");
    expect(waiting).toMatchObject({ severity: "NOTICE", attempt: 1 });
    expect(waiting.message).toContain(`127.0.0.1:${port}/postgres`);

    // As in Compose or a fresh Kubernetes namespace: the server starts after the Job.
    server = await startEmbeddedPostgres({ dataDir: mkdtempSync(join(tmpdir(), "yomu-late-pg-")), port, ephemeral: true });
    expect(server.port).toBe(port);

    const run = await runner.done;
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(only(run, "migration.run.finished")).toMatchObject({ status: "applied", applied: folder.tags });
    expect(await tableExists(server.url, "things")).toBe(true);
    expect(await drizzleRows(server.url)).toHaveLength(1);
  });

  it("that never comes up makes the runner exit 7 after --connect-timeout", async () => {
    const port = await freePort();
    const run = await runCli(["up", "--connect-timeout", "2s"], {
      DATABASE_URL: `postgres://postgres@127.0.0.1:${port}/postgres`,
      MIGRATIONS_DIR: folder.dir,
    });
    expect(run.code).toBe(7);
    expect(eventsNamed(run, "migration.db.waiting").length).toBeGreaterThanOrEqual(1);
    const failed = only(run, "migration.failed");
    expect(failed.code).toBe("DATABASE_UNREACHABLE");
    expect(failed.message).toContain(`127.0.0.1:${port}/postgres`);
    expect(only(run, "migration.run.finished").status).toBe("failed");
  });

  // Regression: a SIGTERM while waiting for the database was reported as DATABASE_UNREACHABLE
  // (exit 7, "not reachable after N attempts"), as if the bound had run out.
  it("stops waiting on SIGTERM and reports the interruption", async () => {
    const port = await freePort();
    const runner = startCli(["up", "--connect-timeout", "60s"], {
      DATABASE_URL: `postgres://postgres@127.0.0.1:${port}/postgres`,
      MIGRATIONS_DIR: folder.dir,
    });
    await runner.waitFor("migration.db.waiting");
    runner.child.kill("SIGTERM");
    const run = await runner.done;
    expect(run.code).toBe(1);
    expect(only(run, "migration.interrupted").signal).toBe("SIGTERM");
    expect(only(run, "migration.failed").code).toBe("INTERRUPTED");
  });
});
