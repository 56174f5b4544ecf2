// yomu-migrate lint on 1,000 generated migration files, as the CLI runs it (one process).
//
//   pnpm build && node bench/lint/run.mjs          # --files N (default 1000), --runs N (default 3)
//
// Target (issue 16): under 10 s for 1,000 files. Prints the wall time of each run and the median.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : Number(process.argv[i + 1]);
};
const count = arg("files", 1000);
const runs = arg("runs", 3);
const cli = fileURLToPath(new URL("../../packages/migrator/bin/yomu-migrate.js", import.meta.url));

// A history shaped like a real one: tables, added columns, indexes, foreign keys, enums, the odd
// drop and rename, statements split at drizzle's breakpoints.
const shapes = [
  (i) => [
    `CREATE TABLE "t${i}" ("id" serial PRIMARY KEY NOT NULL, "name" text NOT NULL, "created_at" timestamp with time zone DEFAULT now() NOT NULL);`,
    `CREATE INDEX "t${i}_name_idx" ON "t${i}" USING btree ("name");`,
  ],
  (i) => [
    `ALTER TABLE "t${i - 1}" ADD COLUMN "note_${i}" text;`,
    `ALTER TABLE "t${i - 1}" ADD COLUMN "flag_${i}" boolean DEFAULT false NOT NULL;`,
  ],
  (i) => [
    `CREATE TYPE "public"."state_${i}" AS ENUM('a', 'b', 'c');`,
    `ALTER TABLE "t${i - 2}" ADD CONSTRAINT "t${i - 2}_fk_${i}" FOREIGN KEY ("id") REFERENCES "public"."t${i - 2}"("id") ON DELETE cascade ON UPDATE no action;`,
  ],
  (i) => [`CREATE INDEX "t${i - 3}_created_idx_${i}" ON "t${i - 3}" ("created_at");`],
  (i) => [`ALTER TABLE "t${i - 4}" DROP COLUMN "note_${i - 3}";`, `ALTER TABLE "t${i - 4}" RENAME COLUMN "name" TO "title_${i}";`],
];

const dir = mkdtempSync(join(tmpdir(), "yomu-bench-lint-"));
try {
  mkdirSync(join(dir, "meta"));
  const files = [];
  for (let i = 0; i < count; i++) {
    const file = join(dir, `${String(i).padStart(4, "0")}_generated.sql`);
    writeFileSync(file, `${shapes[i % shapes.length](i).join("\n--> statement-breakpoint\n")}\n`);
    files.push(file);
  }
  const times = [];
  let findings = 0;
  for (let r = 0; r < runs; r++) {
    const started = performance.now();
    const run = spawnSync(process.execPath, [cli, "lint", "--json", ...files], {
      cwd: dir,
      encoding: "utf8",
      maxBuffer: 256 * 1024 * 1024,
    });
    times.push(performance.now() - started);
    if (run.status !== 6 && run.status !== 0) throw new Error(`lint exited ${run.status}: ${run.stderr}`);
    findings = JSON.parse(run.stdout).findings.length;
  }
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)];
  console.log(
    `lint of ${count} files: ${times.map((t) => `${(t / 1000).toFixed(2)}s`).join(", ")}; median ${(median / 1000).toFixed(2)}s (${findings} findings)`,
  );
  console.log(median < 10_000 ? "PASS: under 10 s" : "FAIL: 10 s or more");
} finally {
  rmSync(dir, { recursive: true, force: true });
}
