import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { createTestDatabase, type TestDatabase } from "../support/database.js";
import { freePort } from "../support/net.js";

// T029 without a Docker engine: take the API service's command and environment from
// docker-compose.yml and run exactly that, from the repository root (the image's /app has the
// same layout), against a real PostgreSQL, the way Compose would once postgres is healthy.

const root = join(import.meta.dirname, "../..");
const compose = parse(readFileSync(join(root, "docker-compose.yml"), "utf8")) as {
  services: Record<string, Record<string, any>>;
  volumes?: Record<string, unknown>;
};
const api = compose.services.api as Record<string, any>;
const postgres = compose.services.postgres as Record<string, any>;

function environmentOf(service: Record<string, any>): Record<string, string> {
  const env = service.environment ?? {};
  if (Array.isArray(env)) return Object.fromEntries(env.map((e: string) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)]));
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v)]));
}

function commandOf(service: Record<string, any>): string[] {
  const command = service.command;
  if (Array.isArray(command)) return command.map(String);
  throw new Error(`the ${"api"} service's command should be a list, so no shell re-parses it: ${JSON.stringify(command)}`);
}

interface Running {
  child: ChildProcess;
  events: Record<string, any>[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  waitFor(event: string): Promise<Record<string, any>>;
}

/** Starts the API service's command as Compose would, with the database and port swapped in. */
function startApiService(databaseUrl: string, port: number, extraEnv: Record<string, string> = {}): Running {
  const [file, ...args] = commandOf(api);
  const child = spawn(file as string, args, {
    cwd: root,
    env: { PATH: process.env.PATH ?? "", ...environmentOf(api), DATABASE_URL: databaseUrl, PORT: String(port), ...extraEnv },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const events: Record<string, any>[] = [];
  const waiters: { event: string; done: (e: Record<string, any>) => void }[] = [];
  let buffer = "";
  child.stdout?.on("data", (chunk) => {
    buffer += chunk;
    let newline = buffer.indexOf("\n");
    while (newline !== -1) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + 1);
      newline = buffer.indexOf("\n");
      if (!line.startsWith("{")) continue;
      const event = JSON.parse(line) as Record<string, any>;
      events.push(event);
      for (const w of waiters.filter((w) => w.event === event.event)) w.done(event);
    }
  });
  let stderr = "";
  child.stderr?.on("data", (chunk) => {
    stderr += chunk;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) =>
    child.on("exit", (code, signal) => done({ code, signal })),
  );
  return {
    child,
    events,
    exited,
    waitFor: (event) => {
      const seen = events.find((e) => e.event === event);
      if (seen) return Promise.resolve(seen);
      return Promise.race([
        new Promise<Record<string, any>>((done) => waiters.push({ event, done })),
        exited.then(({ code }) => {
          throw new Error(`the api command exited (${code}) before ${event}:\n${stderr}\n${JSON.stringify(events, null, 1)}`);
        }),
      ]);
    },
  };
}

describe("docker-compose.yml", () => {
  it("passes yamllint with the rules the k8s manifests follow", () => {
    const config = "{extends: default, rules: {line-length: {max: 140}, document-start: disable}}";
    const lint = spawnSync("yamllint", ["-f", "parsable", "-s", "-d", config, "docker-compose.yml"], { cwd: root, encoding: "utf8" });
    if (lint.error) throw new Error(`yamllint could not run (apt-get install yamllint): ${lint.error.message}`);
    expect(lint.stdout).toBe("");
    expect(lint.status).toBe(0);
  });

  it("starts the API only once PostgreSQL's pg_isready healthcheck passes", () => {
    expect(String(postgres.image)).toMatch(/^postgres:15(\b|-)/);
    const test = postgres.healthcheck?.test;
    expect(Array.isArray(test) ? test.join(" ") : String(test)).toMatch(/\bpg_isready\b/);
    expect(api.depends_on).toEqual({ postgres: { condition: "service_healthy" } });
  });

  it("keeps PostgreSQL's data in a named volume and mounts init.sql nowhere", () => {
    expect(postgres.volumes).toContain("pgdata:/var/lib/postgresql/data");
    expect(compose.volumes).toHaveProperty("pgdata");
    for (const [name, service] of Object.entries(compose.services)) {
      for (const volume of service.volumes ?? []) {
        const text = typeof volume === "string" ? volume : JSON.stringify(volume);
        expect(text, `service ${name}`).not.toMatch(/init\.sql|docker-entrypoint-initdb\.d/);
      }
    }
  });

  it("builds the API from apps/api/Dockerfile and points it at the postgres service's database", () => {
    expect(api.build).toMatchObject({ context: ".", dockerfile: "apps/api/Dockerfile" });
    expect(existsSync(join(root, api.build.dockerfile))).toBe(true);
    const url = new URL(environmentOf(api).DATABASE_URL as string);
    const pg = environmentOf(postgres);
    expect([url.hostname, url.username, url.password, url.pathname]).toEqual([
      "postgres",
      pg.POSTGRES_USER,
      pg.POSTGRES_PASSWORD,
      `/${pg.POSTGRES_DB}`,
    ]);
  });

  it("runs the migrations, then the server", () => {
    const script = commandOf(api).join(" ");
    expect(script).toMatch(/node packages\/migrator\/dist\/yomu-migrate\.mjs && exec node apps\/api\/dist\/main\.js/);
  });
});

describe("the API service's command against real PostgreSQL", () => {
  let db: TestDatabase;
  let port: number;

  beforeAll(async () => {
    db = await createTestDatabase("compose");
    port = await freePort();
  });
  afterAll(() => db?.drop());

  async function readyz(): Promise<{ status: number; body: Record<string, any> }> {
    const res = await fetch(`http://127.0.0.1:${port}/readyz`);
    return { status: res.status, body: (await res.json()) as Record<string, any> };
  }

  it("applies the migrations, serves /readyz 200, and stops cleanly on SIGTERM", async () => {
    const run = startApiService(db.url, port);
    try {
      const finished = await run.waitFor("migration.run.finished");
      expect(finished).toMatchObject({ status: "applied", fromVersion: null });
      await run.waitFor("server.started");
      const ready = await readyz();
      expect(ready.status).toBe(200);
      expect(ready.body.schemaVersion).toBe(finished.schemaVersion);
      // The migration ran to completion before the server started: one process after the other.
      const order = run.events.map((e) => e.event).filter((e) => e === "migration.run.finished" || e === "server.started");
      expect(order).toEqual(["migration.run.finished", "server.started"]);
    } finally {
      run.child.kill("SIGTERM");
    }
    // `exec` made node the process Compose signals, so SIGTERM reaches the server, not a shell.
    expect(await run.exited).toEqual({ code: 0, signal: null });
    expect(run.events.map((e) => e.event)).toContain("server.stopped");
  });

  it("finds nothing to do the second time and serves again", async () => {
    const run = startApiService(db.url, port);
    try {
      expect(await run.waitFor("migration.run.finished")).toMatchObject({ status: "noop", applied: [] });
      await run.waitFor("server.started");
      expect((await readyz()).status).toBe(200);
    } finally {
      run.child.kill("SIGTERM");
    }
    expect((await run.exited).code).toBe(0);
  });

  it("does not start the server when the migrations cannot run, and exits with the migrator's code", async () => {
    const run = startApiService("postgres://postgres@127.0.0.1:1/nothing", port, { MIGRATION_CONNECT_TIMEOUT: "1s" });
    expect((await run.exited).code).toBe(7);
    expect(run.events.map((e) => e.event)).not.toContain("server.started");
  });
});
