import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../../test/support/database.js";
import { type CliRun, only, runCli } from "./support/cli.js";
import { MigrationsFolder } from "./support/migrations.js";

const folder = new MigrationsFolder([{ name: "notes", statements: ["CREATE TABLE notes (id integer);"] }]);
const scratch = mkdtempSync(join(tmpdir(), "yomu-config-"));
let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase("config");
});
afterAll(async () => {
  await db.drop();
  folder.remove();
  rmSync(scratch, { recursive: true, force: true });
});

const validUrl = () => db.url;

function expectNoStackTrace(run: CliRun) {
  expect(`${run.stdout}${run.stderr}`).not.toMatch(/\n\s+at .+[:(]/);
}

/** A usage error: exit 2 before any connection, and the first stderr line names `what`. */
function expectUsageError(run: CliRun, ...what: string[]) {
  expect(run.code).toBe(2);
  expect(run.stdout).toBe("");
  const firstLine = run.stderr.split("\n")[0] ?? "";
  expect(firstLine).toContain(what[0]);
  for (const name of what) expect(run.stderr).toContain(name);
  expectNoStackTrace(run);
}

describe("configuration errors exit 2 with an error naming the setting", () => {
  it("no DATABASE_URL", async () => {
    expectUsageError(await runCli(["up"], { MIGRATIONS_DIR: folder.dir }), "DATABASE_URL");
  });

  it("a DATABASE_URL that is not a URL", async () => {
    expectUsageError(await runCli(["up"], { DATABASE_URL: "localhost:5432/app", MIGRATIONS_DIR: folder.dir }), "DATABASE_URL");
  });

  it("a DATABASE_URL for another database engine", async () => {
    expectUsageError(
      await runCli(["up"], { DATABASE_URL: "mysql://root@localhost/app", MIGRATIONS_DIR: folder.dir }),
      "DATABASE_URL",
      "mysql",
    );
  });

  it("an unknown flag", async () => {
    expectUsageError(await runCli(["up", "--lock-wait-timout", "5s"], { DATABASE_URL: validUrl() }), "--lock-wait-timout");
  });

  it("an unknown MIGRATION_ variable, so a typo never falls back to a default", async () => {
    expectUsageError(await runCli(["up"], { DATABASE_URL: validUrl(), MIGRATION_LOCK_WAIT_TIMOUT: "5s" }), "MIGRATION_LOCK_WAIT_TIMOUT");
  });

  it("a bad duration, from a flag or from the environment", async () => {
    expectUsageError(
      await runCli(["up", "--lock-wait-timeout", "5 minutes"], { DATABASE_URL: validUrl() }),
      "--lock-wait-timeout",
      "5 minutes",
    );
    expectUsageError(await runCli(["up"], { DATABASE_URL: validUrl(), MIGRATION_LOCK_TIMEOUT: "-1s" }), "MIGRATION_LOCK_TIMEOUT", "-1s");
  });

  // Regression: 600h passed parsing and failed only at run time, as a migration failure (exit 1),
  // because PostgreSQL's timeouts (like Node's timers) stop at 2^31-1 ms.
  it("a duration longer than PostgreSQL's timeouts can hold", async () => {
    const run = await runCli(["up", "--statement-timeout", "600h"], { DATABASE_URL: validUrl(), MIGRATIONS_DIR: folder.dir });
    expectUsageError(run, "--statement-timeout", "600h");
  });

  // Regression (issue 15, finding 3): PostgreSQL reads 0 as "no timeout"; an application SELECT
  // then waited 7.1 s behind the DDL.
  it("a zero lock or statement timeout, which PostgreSQL would read as none", async () => {
    for (const [flag, env] of [
      ["--lock-timeout", "MIGRATION_LOCK_TIMEOUT"],
      ["--statement-timeout", "MIGRATION_STATEMENT_TIMEOUT"],
    ] as const) {
      const run = await runCli(["up", flag, "0s"], { DATABASE_URL: validUrl(), MIGRATIONS_DIR: folder.dir });
      expectUsageError(run, flag);
      expect(run.stderr).toContain('write "off"');
      expectUsageError(await runCli(["up"], { DATABASE_URL: validUrl(), MIGRATIONS_DIR: folder.dir, [env]: "0" }), env);
    }
  });

  it("every problem at once, not one per attempt", async () => {
    const run = await runCli(["up", "--bogus", "--lock-wait-timeout", "soon", "--log-format", "xml"], {
      DATABASE_URL: "mysql://root@localhost/app",
      MIGRATION_SLOW_THRESHOLD: "fast",
    });
    expect(run.code).toBe(2);
    for (const name of ["--bogus", "--lock-wait-timeout", "soon", "--log-format", "xml", "DATABASE_URL", "MIGRATION_SLOW_THRESHOLD"]) {
      expect(run.stderr).toContain(name);
    }
    expectNoStackTrace(run);
  });
});

describe("migrations folder errors exit 2 naming the file", () => {
  async function upIn(dir: string): Promise<{ run: CliRun; message: string }> {
    const run = await runCli(["up"], { DATABASE_URL: validUrl(), MIGRATIONS_DIR: dir });
    expect(run.code, run.stdout + run.stderr).toBe(2);
    expectNoStackTrace(run);
    expect(run.otherLines).toEqual([]);
    const failed = only(run, "migration.failed");
    expect(failed.code).toBe("JOURNAL_INVALID");
    return { run, message: String(failed.message) };
  }

  function folderWith(name: string, journal: string | undefined, files: Record<string, string> = {}): string {
    const dir = join(scratch, name);
    mkdirSync(join(dir, "meta"), { recursive: true });
    if (journal !== undefined) writeFileSync(join(dir, "meta", "_journal.json"), journal);
    for (const [file, text] of Object.entries(files)) writeFileSync(join(dir, file), text);
    return dir;
  }

  const entry = (tag: string, when: number) => ({ idx: 0, version: "7", when, tag, breakpoints: true });

  it("a missing folder", async () => {
    const missing = join(scratch, "no-such-folder");
    expect((await upIn(missing)).message).toContain(missing);
  });

  it("a missing journal", async () => {
    const dir = folderWith("no-journal", undefined, { "0000_a.sql": "SELECT 1;" });
    expect((await upIn(dir)).message).toContain(join("meta", "_journal.json"));
  });

  it("a journal that is not JSON", async () => {
    const dir = folderWith("bad-json", '{"version":"7","entries":[');
    const { message } = await upIn(dir);
    expect(message).toContain("_journal.json");
    expect(message).toContain("not valid JSON");
  });

  it("a journal without entries", async () => {
    const dir = folderWith("no-entries", JSON.stringify({ version: "7", dialect: "postgresql" }));
    expect((await upIn(dir)).message).toContain('"entries"');
  });

  it("journal entries without their files, all named at once", async () => {
    const dir = folderWith(
      "missing-files",
      JSON.stringify({ version: "7", dialect: "postgresql", entries: [entry("0000_one", 1), entry("0001_two", 2)] }),
    );
    const { message } = await upIn(dir);
    expect(message).toContain("0000_one.sql");
    expect(message).toContain("0001_two.sql");
  });

  it("two entries drizzle could not tell apart (same when)", async () => {
    const dir = folderWith(
      "same-when",
      JSON.stringify({ version: "7", dialect: "postgresql", entries: [entry("0000_one", 5), entry("0001_two", 5)] }),
      { "0000_one.sql": "SELECT 1;", "0001_two.sql": "SELECT 2;" },
    );
    const { message } = await upIn(dir);
    expect(message).toContain("0000_one");
    expect(message).toContain("0001_two");
  });
});

describe("a password in DATABASE_URL", () => {
  const secret = "Sup3r-s3cret-pw";

  function withPassword(url: string, password = secret): string {
    const parsed = new URL(url);
    parsed.username = parsed.username || "postgres";
    parsed.password = password;
    return parsed.toString();
  }

  function expectNoSecret(run: CliRun, ...forms: string[]) {
    for (const form of [secret, ...forms]) {
      expect(run.stdout).not.toContain(form);
      expect(run.stderr).not.toContain(form);
    }
  }

  // Regression: a stray argument was quoted verbatim on stderr, password and all.
  it("never appears when a connection string is typed where no argument belongs", async () => {
    const run = await runCli(["status", `postgres://app:${secret}@127.0.0.1:9/yomu`], {});
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("unexpected argument");
    expectNoSecret(run);
  });

  it("never appears when a migration fails", async () => {
    const bad = new MigrationsFolder([{ name: "bad", statements: [`SELECT '${secret.slice(0, 2)}' FROM no_such_table;`] }]);
    try {
      for (const format of ["json", "pretty"]) {
        const run = await runCli(["up", "--log-format", format], { DATABASE_URL: withPassword(db.url), MIGRATIONS_DIR: bad.dir });
        expect(run.code).toBe(1);
        expectNoSecret(run);
      }
    } finally {
      bad.remove();
    }
  });

  it("never appears when the server cannot be reached or the database does not exist", async () => {
    const unreachable = await runCli(["up", "--connect-timeout", "1s"], {
      DATABASE_URL: `postgres://postgres:${secret}@127.0.0.1:9/app`,
      MIGRATIONS_DIR: folder.dir,
    });
    expect(unreachable.code).toBe(7);
    expectNoSecret(unreachable);

    const url = new URL(withPassword(db.url));
    url.pathname = "/no_such_database";
    const missing = await runCli(["status"], { DATABASE_URL: url.toString(), MIGRATIONS_DIR: folder.dir });
    expect(missing.code).toBe(2);
    expect(missing.stdout).toContain("no_such_database");
    expectNoSecret(missing);
  });

  it("never appears in configuration errors", async () => {
    const run = await runCli(["up", "--bogus"], { DATABASE_URL: `mysql://root:${secret}@localhost/app` });
    expect(run.code).toBe(2);
    expectNoSecret(run);
  });

  it("never appears, encoded or decoded, in a successful run or in status", async () => {
    const encoded = "p%40ss%2Fw0rd-x";
    const url = withPassword(db.url, encoded);
    expect(url).toContain(encoded);
    for (const args of [["up"], ["up", "--log-format", "pretty"], ["status"], ["status", "--json"], ["status", "--log-format", "pretty"]]) {
      const run = await runCli(args, { DATABASE_URL: url, MIGRATIONS_DIR: folder.dir });
      expect(run.code, `${args.join(" ")}: ${run.stdout}${run.stderr}`).toBe(0);
      expectNoSecret(run, encoded, decodeURIComponent(encoded));
    }
  });
});

describe("timeouts turned off on purpose", () => {
  it("run with off, logged at WARNING, and the session really has no limit", async () => {
    const other = await createTestDatabase("config_off");
    const seen = new MigrationsFolder([
      {
        name: "seen",
        statements: ["CREATE TABLE seen AS SELECT current_setting('lock_timeout') AS lt, current_setting('statement_timeout') AS st;"],
      },
    ]);
    try {
      const run = await runCli(["up", "--lock-timeout", "off", "--statement-timeout", "off"], {
        DATABASE_URL: other.url,
        MIGRATIONS_DIR: seen.dir,
      });
      expect(run.code, run.stdout).toBe(0);
      const warnings = run.events.filter((e) => e.event === "migration.timeout.off");
      expect(warnings.map((w) => [w.severity, w.setting])).toEqual([
        ["WARNING", "lock-timeout"],
        ["WARNING", "statement-timeout"],
      ]);
      expect((await other.query("SELECT lt, st FROM seen")).rows).toEqual([{ lt: "0", st: "0" }]);
    } finally {
      seen.remove();
      await other.drop();
    }
  });
});

describe("an error nobody anticipated", () => {
  it("exits 8 with a one-line message naming the command and the fault, never 1 and never a stack", async () => {
    // The fault is injected into the CLI process: reading a migration file throws a TypeError.
    const fault = fileURLToPath(new URL("./support/inject-fault.mjs", import.meta.url));
    const folder = new MigrationsFolder([{ name: "fine", statements: ["SELECT 1;"] }]);
    try {
      const run = await runCli(["status"], { DATABASE_URL: validUrl(), MIGRATIONS_DIR: folder.dir, NODE_OPTIONS: `--import=${fault}` });
      expect(run.code).toBe(8);
      const error = only(run, "migration.error");
      expect(error).toMatchObject({ code: "INTERNAL", severity: "ERROR" });
      expect(error.message).toMatch(/^internal error in status: injected fault/);
      expectNoStackTrace(run);
      expect(run.otherLines).toEqual([]);
    } finally {
      folder.remove();
    }
  });

  it("a folder where the journal names a .sql file is a journal error (exit 2) naming the file, not a bug", async () => {
    const odd = new MigrationsFolder([{ name: "odd", statements: ["SELECT 1;"] }]);
    try {
      const file = odd.byName("odd").file;
      rmSync(file);
      mkdirSync(file);
      const run = await runCli(["status"], { DATABASE_URL: validUrl(), MIGRATIONS_DIR: odd.dir });
      expect(run.code).toBe(2);
      const error = only(run, "migration.error");
      expect(error).toMatchObject({ code: "JOURNAL_INVALID" });
      expect(error.message).toMatch(/odd\.sql is not a file/);
      expectNoStackTrace(run);
    } finally {
      odd.remove();
    }
  });
});

// Regression (issue 15, finding 6): with the password "migration", "3 pending migration(s)" was
// printed as "3 pending ***(s)".
describe("a password that is also a word", () => {
  it("is masked as a credential and left alone in prose", async () => {
    const other = await createTestDatabase("config_word");
    const two = new MigrationsFolder([
      { name: "a", statements: ["CREATE TABLE a (id int);"] },
      { name: "b", statements: ["CREATE TABLE b (id int);"] },
    ]);
    try {
      const url = new URL(other.url);
      url.username = "postgres";
      url.password = "migration";
      const env = { DATABASE_URL: url.toString(), MIGRATIONS_DIR: two.dir };
      const status = await runCli(["status"], env);
      expect(only(status, "migration.status").message).toBe("2 pending migration(s)");
      const up = await runCli(["up"], env);
      expect(up.code).toBe(0);
      expect(only(up, "migration.plan").message).toBe("2 pending migration(s) in 1 batch(es)");
      for (const run of [status, up]) {
        expect(run.stdout).not.toContain("***(s)");
        expect(run.stdout).not.toContain(":migration@");
      }
    } finally {
      two.remove();
      await other.drop();
    }
  });
});
