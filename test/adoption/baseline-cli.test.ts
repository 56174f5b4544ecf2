import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { yomuMigrate } from "./support.js";

// `yomu-migrate baseline` as a process: exit codes per
// specs/114-drizzle-kit-k8s-migration/contracts/migrator-cli.md, and no database needed.

const generated = `CREATE TABLE "t" (\n\t"id" integer PRIMARY KEY NOT NULL\n);\n--> statement-breakpoint\nCREATE INDEX "t_id_idx" ON "t" USING btree ("id");`;

describe("yomu-migrate baseline", () => {
  const dir = mkdtempSync(join(tmpdir(), "yomu-baseline-cli-"));

  it("--check exits 4 on a file not yet in baseline form and leaves it alone", async () => {
    const file = join(dir, "a.sql");
    writeFileSync(file, generated);
    const run = await yomuMigrate(["baseline", file, "--check"]);
    expect(run.code).toBe(4);
    expect(run.events.at(-1)).toMatchObject({ event: "migration.baseline.finished", changed: true, written: false });
    expect(readFileSync(file, "utf8")).toBe(generated);
  });

  it("rewrites the file (exit 0), after which --check exits 0", async () => {
    const file = join(dir, "b.sql");
    writeFileSync(file, generated);
    const run = await yomuMigrate(["baseline", file]);
    expect(run.code).toBe(0);
    expect(run.events.at(-1)).toMatchObject({ changed: true, written: true });
    expect(readFileSync(file, "utf8")).toContain('CREATE TABLE IF NOT EXISTS "t"');
    expect((await yomuMigrate(["baseline", file, "--check"])).code).toBe(0);
  });

  it("warns about each statement it left as it was", async () => {
    const file = join(dir, "c.sql");
    writeFileSync(file, `${generated}--> statement-breakpoint\nUPDATE "t" SET "id" = 1;`);
    const run = await yomuMigrate(["baseline", file]);
    expect(run.code).toBe(0);
    expect(run.events.filter((e) => e.event === "migration.baseline.untouched")).toMatchObject([
      { severity: "WARNING", statement: 3, text: 'UPDATE "t" SET "id" = 1' },
    ]);
  });

  it("exits 2 naming a missing file, and 2 without one", async () => {
    const missing = join(dir, "missing.sql");
    const run = await yomuMigrate(["baseline", missing]);
    expect(run.code).toBe(2);
    expect(run.events.at(-1)?.message).toContain(missing);
    const none = await yomuMigrate(["baseline"]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain("baseline needs a migration file");
  });

  it("refuses --check on other commands", async () => {
    const run = await yomuMigrate(["status", "--check"], { DATABASE_URL: "postgres://nobody@127.0.0.1:1/none" });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('--check does not apply to "status"');
  });
});
