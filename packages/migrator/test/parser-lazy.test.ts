import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../../test/support/database.js";
import { only, runCli } from "./support/cli.js";
import { MigrationsFolder } from "./support/migrations.js";

// A module resolve hook in the CLI's process writes down whether PostgreSQL's parser was loaded.
const scratch = mkdtempSync(join(tmpdir(), "yomu-parser-lazy-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
const hooks = join(scratch, "hooks.mjs");
writeFileSync(
  hooks,
  `import { appendFileSync } from "node:fs";
export async function resolve(specifier, context, next) {
  if (specifier === "libpg-query") appendFileSync(process.env.YOMU_TEST_TRACE, specifier + "\\n");
  return next(specifier, context);
}
`,
);
const register = join(scratch, "register.mjs");
writeFileSync(register, `import { register } from "node:module";\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`);

let db: TestDatabase;
let folder: MigrationsFolder;
beforeEach(async () => {
  db = await createTestDatabase("parser_lazy");
  folder = new MigrationsFolder([{ name: "first", statements: ["CREATE TABLE first (id integer);"] }]);
});
afterEach(async () => {
  await db.drop();
  folder.remove();
});

async function upLoads(trace: string): Promise<boolean> {
  const run = await runCli(["up"], {
    DATABASE_URL: db.url,
    MIGRATIONS_DIR: folder.dir,
    NODE_OPTIONS: `--import=${pathToFileURL(register).href}`,
    YOMU_TEST_TRACE: trace,
  });
  expect(run.code, run.stdout + run.stderr).toBe(0);
  return existsSync(trace) && readFileSync(trace, "utf8").includes("libpg-query");
}

describe("PostgreSQL's parser", () => {
  it("is loaded by a run with something to apply, and not by a no-op run", async () => {
    expect(await upLoads(join(scratch, `${db.name}-apply`))).toBe(true);
    expect(await upLoads(join(scratch, `${db.name}-noop`))).toBe(false);
    const status = await runCli(["up"], { DATABASE_URL: db.url, MIGRATIONS_DIR: folder.dir });
    expect(only(status, "migration.run.finished").status).toBe("noop");
  });
});
