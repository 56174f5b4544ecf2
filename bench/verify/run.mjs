// verify's cost against up's, side by side in one run on one server (issue 14: at most 2×):
// a generated 150-migration history (tables with keys, checks, defaults, indexes, foreign keys,
// enums, views, functions, triggers and policies); each round applies it with `yomu-migrate up`
// to a fresh, empty database, then runs `yomu-migrate verify` on that database. Prints the median
// and fastest wall time of each, the ratio of the medians, and what verify spent building its
// scratch database.
// Usage (after `pnpm build`): node bench/verify/run.mjs [--runs N] [--migrations N]
// DATABASE_URL picks the server (a superuser URL); default the local PostgreSQL on 5432.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { freshDatabase } from "./support.mjs";

const root = fileURLToPath(new URL("../../", import.meta.url));
const flag = (name, fallback) => {
  const at = process.argv.indexOf(name);
  return at === -1 ? fallback : Number(process.argv[at + 1]);
};
const RUNS = flag("--runs", 5);
const MIGRATIONS = flag("--migrations", 150);
const cli = join(root, "packages/migrator/bin/yomu-migrate.js");

function statements(i) {
  const t = `t${i}`;
  const out = [
    `CREATE TABLE "${t}" ("id" serial PRIMARY KEY NOT NULL, "name" text DEFAULT '' NOT NULL, "amount" integer DEFAULT 0 NOT NULL,
       "data" jsonb DEFAULT '{"a":1}'::jsonb, "created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
       CONSTRAINT "${t}_amount_check" CHECK ("amount" >= 0))`,
    `CREATE INDEX "${t}_name_idx" ON "${t}" USING btree ("name", "created_at" DESC) WHERE "amount" > 0`,
  ];
  if (i > 0) {
    out.push(`ALTER TABLE "${t}" ADD COLUMN "parent_id" integer`);
    out.push(
      `ALTER TABLE "${t}" ADD CONSTRAINT "${t}_parent_id_t${i - 1}_id_fk" FOREIGN KEY ("parent_id") REFERENCES "t${i - 1}"("id") ON DELETE cascade`,
    );
  }
  if (i % 5 === 0) {
    out.push(`CREATE TYPE "e${i}" AS ENUM('a', 'b', 'c')`);
    out.push(`ALTER TABLE "${t}" ADD COLUMN "state" "e${i}" DEFAULT 'a' NOT NULL`);
  }
  if (i % 7 === 0) out.push(`CREATE VIEW "v${i}" AS SELECT "id", "name" FROM "${t}" WHERE "amount" > 10`);
  if (i % 10 === 0) {
    out.push(`CREATE FUNCTION "f${i}"() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW."name" := trim(NEW."name"); RETURN NEW; END $$`);
    out.push(`CREATE TRIGGER "${t}_trim" BEFORE INSERT ON "${t}" FOR EACH ROW EXECUTE FUNCTION "f${i}"()`);
    out.push(`ALTER TABLE "${t}" ENABLE ROW LEVEL SECURITY`);
    out.push(`CREATE POLICY "${t}_visible" ON "${t}" FOR SELECT TO public USING ("amount" > 0)`);
  }
  return out;
}

function writeHistory(dir) {
  mkdirSync(join(dir, "meta"), { recursive: true });
  const entries = [];
  const base = Date.UTC(2026, 0, 1);
  for (let i = 0; i < MIGRATIONS; i++) {
    const tag = `${String(i).padStart(4, "0")}_step_${i}`;
    writeFileSync(join(dir, `${tag}.sql`), `${statements(i).join(";\n--> statement-breakpoint\n")};\n`);
    entries.push({ idx: i, version: "7", when: base + i * 60_000, tag, breakpoints: true });
  }
  writeFileSync(join(dir, "meta", "_journal.json"), JSON.stringify({ version: "7", dialect: "postgresql", entries }, null, 2));
}

function timed(args, env) {
  const started = performance.now();
  const run = spawnSync(process.execPath, [cli, ...args], {
    env: { PATH: process.env.PATH, ...env },
    encoding: "utf8",
    maxBuffer: 1 << 26,
  });
  const ms = performance.now() - started;
  if (run.status !== 0) throw new Error(`yomu-migrate ${args.join(" ")} exited ${run.status}:\n${run.stdout}${run.stderr}`);
  return { ms, stdout: run.stdout };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const scratch = mkdtempSync(join(tmpdir(), "yomu-bench-verify-"));
const dir = process.env.KEEP_HISTORY ?? join(scratch, "migrations");
writeHistory(dir);
const ups = [];
const verifies = [];
const shadows = [];
try {
  for (let round = 0; round <= RUNS; round++) {
    const db = await freshDatabase(`round${round}`);
    const env = { DATABASE_URL: db.url, MIGRATIONS_DIR: dir };
    try {
      const up = timed(["up"], env);
      const verify = timed(["verify"], env);
      const shadow = verify.stdout
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l))
        .find((e) => e.event === "migration.verify.shadow");
      // Round 0 warms the page cache and the catalog; it is not counted.
      if (round > 0) {
        ups.push(up.ms);
        verifies.push(verify.ms);
        shadows.push(shadow?.durationMs ?? Number.NaN);
      }
    } finally {
      await db.drop();
    }
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}

const row = (label, xs) =>
  `| ${label.padEnd(44)} | ${String(Math.round(median(xs))).padStart(9)} | ${String(Math.round(Math.min(...xs))).padStart(7)} |`;
console.log(`${MIGRATIONS} migrations, ${RUNS} rounds (after one warm-up)\n`);
console.log(`| ${"command".padEnd(44)} | median ms | min ms |`);
console.log(`|${"-".repeat(46)}|----------:|-------:|`);
console.log(row("yomu-migrate up (empty database)", ups));
console.log(row("yomu-migrate verify (same database)", verifies));
console.log(row("  of which: scratch database built and read", shadows));
console.log(`\nverify / up (medians): ${(median(verifies) / median(ups)).toFixed(2)}× (target at most 2×)`);
