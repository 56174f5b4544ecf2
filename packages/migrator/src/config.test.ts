import { describe, expect, it } from "vitest";
import { type Config, parseConfig } from "./config.js";

const url = "postgres://app@db:5432/yomu";
const tty = { isTTY: false };

function ok(argv: string[], env: Record<string, string | undefined> = { DATABASE_URL: url }, options = tty): Config {
  const result = parseConfig(argv, env, options);
  if (!result.ok) throw new Error(`expected a valid configuration, got: ${result.problems.join("; ")}`);
  return result.config;
}

function problems(argv: string[], env: Record<string, string | undefined> = { DATABASE_URL: url }): string[] {
  const result = parseConfig(argv, env, tty);
  if (result.ok) throw new Error("expected problems");
  return result.problems;
}

describe("parseConfig", () => {
  it("defaults to up with the contract's defaults", () => {
    expect(ok([])).toMatchObject({
      command: "up",
      databaseUrl: url,
      dir: "drizzle/migrations",
      lockWaitTimeoutMs: 300_000,
      slowThresholdMs: 30_000,
      pushgatewayUrl: undefined,
      logFormat: "json",
      allowOutOfOrder: false,
    });
  });

  it("logs pretty on a terminal unless told otherwise", () => {
    expect(ok([], { DATABASE_URL: url }, { isTTY: true }).logFormat).toBe("pretty");
    expect(ok([], { DATABASE_URL: url, LOG_FORMAT: "json" }, { isTTY: true }).logFormat).toBe("json");
  });

  it("reads every contract setting from the environment", () => {
    expect(
      ok(["status"], {
        DATABASE_URL: url,
        MIGRATIONS_DIR: "db/migrations",
        MIGRATION_LOCK_WAIT_TIMEOUT: "5m",
        MIGRATION_SLOW_THRESHOLD: "500ms",
        PUSHGATEWAY_URL: "http://pushgateway:9091/",
        LOG_FORMAT: "pretty",
      }),
    ).toMatchObject({
      command: "status",
      dir: "db/migrations",
      lockWaitTimeoutMs: 300_000,
      slowThresholdMs: 500,
      pushgatewayUrl: "http://pushgateway:9091",
      logFormat: "pretty",
    });
  });

  it("lets flags win over the environment, in both --flag value and --flag=value forms", () => {
    const config = ok(["--lock-wait-timeout", "1s", "--dir=other", "--database-url", "postgresql://x@y/z"], {
      DATABASE_URL: url,
      MIGRATION_LOCK_WAIT_TIMEOUT: "5m",
      MIGRATIONS_DIR: "db/migrations",
    });
    expect(config).toMatchObject({ lockWaitTimeoutMs: 1000, dir: "other", databaseUrl: "postgresql://x@y/z" });
  });

  it("treats an empty environment variable as unset", () => {
    expect(ok([], { DATABASE_URL: url, MIGRATION_LOCK_WAIT_TIMEOUT: "" }).lockWaitTimeoutMs).toBe(300_000);
  });

  it("takes switches only for the commands they belong to", () => {
    expect(ok(["status", "--json", "--require-current"])).toMatchObject({ json: true, requireCurrent: true });
    expect(ok(["up", "--allow-out-of-order"]).allowOutOfOrder).toBe(true);
    expect(problems(["up", "--require-current"]).join("\n")).toContain("--require-current");
  });

  it("reports every problem at once", () => {
    const found = problems(["frobnicate", "--nope", "--lock-wait-timeout", "soon", "--log-format", "xml", "--dir"], {
      DATABASE_URL: "mysql://root@db/app",
      MIGRATION_SLOW_THRESHOLD: "slow",
      MIGRATION_LOCK_WAIT_TIMOUT: "1s",
    }).join("\n");
    for (const name of [
      "frobnicate",
      "--nope",
      "soon",
      "xml",
      "--dir",
      "mysql",
      "MIGRATION_SLOW_THRESHOLD",
      "MIGRATION_LOCK_WAIT_TIMOUT",
    ]) {
      expect(found).toContain(name);
    }
  });

  it("requires a database, naming both ways to give one", () => {
    const found = problems([], {}).join("\n");
    expect(found).toContain("DATABASE_URL");
    expect(found).toContain("--database-url");
  });

  it("describes a bad DATABASE_URL without quoting it, since it may hold a password", () => {
    for (const bad of ["not a url:hunter22", "mysql://root:hunter22@db/app", "postgres://u:hunter22@/db"]) {
      const found = problems([], { DATABASE_URL: bad }).join("\n");
      expect(found).toContain("DATABASE_URL");
      expect(found).not.toContain("hunter22");
    }
  });

  it("refuses a Pushgateway URL that is not http(s)", () => {
    expect(problems([], { DATABASE_URL: url, PUSHGATEWAY_URL: "pushgateway:9091" }).join("\n")).toContain("PUSHGATEWAY_URL");
  });
});

describe("a DATABASE_URL that is set but invalid", () => {
  // Regression: it was reported twice, as invalid and as "no database: set DATABASE_URL".
  it("is one problem, naming the variable", () => {
    const result = parseConfig([], { DATABASE_URL: "localhost:5432/app" }, { isTTY: false });
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.problems.filter((p) => p.includes("DATABASE_URL"))).toHaveLength(1);
  });
});
