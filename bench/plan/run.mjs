// yomu-migrate plan on a 200-migration history with 5 pending files, as the CLI runs it: read the
// target, build the scratch copy from the 195 applied migrations, optionally seed it, trace the
// 5 pending files, drop the copy.
//
//   pnpm build && node bench/plan/run.mjs     # --runs N (default 3), --rows N (default 0 and 1000)
//
// DATABASE_URL: a superuser URL (default postgres://postgres@127.0.0.1:5432/postgres).
// Target (issue 16): under 5 s. Prints each run's wall time and the median, per --rows setting.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";

const option = (name) => {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? undefined : Number(process.argv[i + 1]);
};
const runs = option("runs") ?? 3;
const rowSettings = option("rows") === undefined ? [0, 1000] : [option("rows")];
const admin = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const cli = fileURLToPath(new URL("../../packages/migrator/bin/yomu-migrate.js", import.meta.url));
const TOTAL = 200;
const PENDING = 5;

// Each migration: a table with a foreign key to the previous one, an index, a column added later.
function statements(i) {
  const list = [
    `CREATE TABLE "t${i}" ("id" serial PRIMARY KEY NOT NULL, "name" text NOT NULL, "parent_id" integer, "created_at" timestamp with time zone DEFAULT now() NOT NULL);`,
    `CREATE INDEX "t${i}_name_idx" ON "t${i}" USING btree ("name");`,
  ];
  if (i > 0) {
    list.push(`ALTER TABLE "t${i}" ADD CONSTRAINT "t${i}_parent_fk" FOREIGN KEY ("parent_id") REFERENCES "public"."t${i - 1}"("id");`);
    list.push(`ALTER TABLE "t${i - 1}" ADD COLUMN "note_${i}" text;`);
  }
  return list;
}
// The pending ones reshape old tables: a rewrite, an index build, a validated constraint.
function pendingStatements(i) {
  const t = `t${i - 100}`;
  return [
    `ALTER TABLE "${t}" ADD COLUMN "token_${i}" uuid DEFAULT gen_random_uuid();`,
    `CREATE INDEX "${t}_created_idx_${i}" ON "${t}" ("created_at");`,
    `ALTER TABLE "${t}" ADD CONSTRAINT "${t}_name_len_${i}" CHECK (length("name") < 500) NOT VALID;`,
    `ALTER TABLE "${t}" VALIDATE CONSTRAINT "${t}_name_len_${i}";`,
  ];
}

function writeHistory(dir, count) {
  mkdirSync(join(dir, "meta"), { recursive: true });
  const entries = [];
  for (let i = 0; i < count; i++) {
    const tag = `${String(i).padStart(4, "0")}_step`;
    const body = i < TOTAL - PENDING ? statements(i) : pendingStatements(i);
    writeFileSync(join(dir, `${tag}.sql`), `${body.join("\n--> statement-breakpoint\n")}\n`);
    entries.push({ idx: i, version: "7", when: Date.UTC(2026, 0, 1) + i * 60_000, tag, breakpoints: true });
  }
  writeFileSync(join(dir, "meta", "_journal.json"), JSON.stringify({ version: "7", dialect: "postgresql", entries }));
}

const work = mkdtempSync(join(tmpdir(), "yomu-bench-plan-"));
const name = `bench_plan_${process.pid}`;
const adminClient = new pg.Client(admin);
await adminClient.connect();
try {
  await adminClient.query(`CREATE DATABASE ${name}`);
  const url = new URL(admin);
  url.pathname = `/${name}`;
  const target = url.toString();
  const applied = join(work, "applied");
  const full = join(work, "full");
  writeHistory(applied, TOTAL - PENDING);
  writeHistory(full, TOTAL);
  const up = spawnSync(process.execPath, [cli, "up", "--dir", applied, "--database-url", target], { encoding: "utf8" });
  if (up.status !== 0) throw new Error(`up failed: ${up.stdout}${up.stderr}`);
  for (const rows of rowSettings) {
    const times = [];
    let statementsTraced = 0;
    const phases = [];
    for (let r = 0; r < runs; r++) {
      const started = performance.now();
      const run = spawnSync(process.execPath, [cli, "plan", "--json", "--rows", String(rows), "--dir", full, "--database-url", target], {
        encoding: "utf8",
        maxBuffer: 64 * 1024 * 1024,
      });
      times.push(performance.now() - started);
      if (run.status !== 0) throw new Error(`plan exited ${run.status}: ${run.stdout}${run.stderr}`);
      const plan = JSON.parse(run.stdout);
      phases.push(`copy ${plan.copy.buildMs}ms, seed ${plan.copy.seedMs}ms`);
      if (plan.migrations.length !== PENDING) throw new Error(`expected ${PENDING} planned migrations, got ${plan.migrations.length}`);
      statementsTraced = plan.migrations.reduce((n, m) => n + m.statements.length, 0);
    }
    times.sort((a, b) => a - b);
    const median = times[Math.floor(times.length / 2)];
    console.log(
      `plan, ${TOTAL} migrations (${PENDING} pending, ${statementsTraced} statements), --rows ${rows}: ${times.map((t) => `${(t / 1000).toFixed(2)}s`).join(", ")}; median ${(median / 1000).toFixed(2)}s ${median < 5000 ? "PASS (< 5 s)" : "FAIL (>= 5 s)"} [${phases.join("; ")}]`,
    );
  }
} finally {
  await adminClient.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await adminClient.end();
  rmSync(work, { recursive: true, force: true });
}
