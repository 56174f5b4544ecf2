// Side-by-side cost of yomu-migrate against drizzle's own tools, in one run on one server:
//   1. a no-op run (everything applied): the bundled `yomu-migrate up` the Job runs, the
//      unbundled bin, `drizzle-kit migrate`, a script calling drizzle-orm's migrate(), and the
//      floor: a script that connects with pg and runs one query; wall time (median), peak RSS (max);
//   2. applying 100, 250 and 500 generated migrations on a fresh database: the bundled CLI
//      against drizzle-orm's migrate() script, their least-squares slopes compared.
// Usage (after `pnpm build`): node bench/migrator/run.mjs [--runs N] [--compare FILE]
//   --compare FILE adds another build of the bundle (say, main's, copied beside dist/ before a
//   change) to both parts, so a change is measured before and after in the same run.
// DATABASE_URL picks the server (a superuser URL); default the local PostgreSQL on 5432.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";

const root = fileURLToPath(new URL("../../", import.meta.url));
const adminUrl = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const runsFlag = process.argv.indexOf("--runs");
const RUNS = runsFlag === -1 ? 15 : Number(process.argv[runsFlag + 1]);
const compareFlag = process.argv.indexOf("--compare");
const COMPARE = compareFlag === -1 ? undefined : process.argv[compareFlag + 1];
const SIZES = [100, 250, 500];
const APPLY_RUNS = 5;
const TIME = "/usr/bin/time";

const scratch = mkdtempSync(join(tmpdir(), "yomu-bench-"));
const created = [];

const JOB = "yomu-migrate up (the Job's bundle)";
const DRIZZLE = "drizzle-orm migrate() script";
const OTHER = `yomu-migrate up (--compare ${COMPARE})`;
const FLOOR = "pg connect + SELECT 1";
const tools = {
  [JOB]: (env) => run([process.execPath, join(root, "packages/migrator/dist/yomu-migrate.mjs"), "up"], env),
  "yomu-migrate up (bin, unbundled)": (env) => run([process.execPath, join(root, "packages/migrator/bin/yomu-migrate.js"), "up"], env),
  "drizzle-kit migrate": (env) =>
    run([process.execPath, join(root, "node_modules/drizzle-kit/bin.cjs"), "migrate", "--config", drizzleConfig(env)], env),
  [DRIZZLE]: (env) => run([process.execPath, join(root, "bench/migrator/drizzle-migrate.mjs")], env),
  [FLOOR]: (env) => run([process.execPath, join(root, "bench/migrator/pg-query.mjs")], env),
};
if (COMPARE) tools[OTHER] = (env) => run([process.execPath, COMPARE, "up"], env);

/** One process: wall time in ms, and peak RSS in KiB as GNU time reports it. */
function run(argv, env) {
  const started = performance.now();
  const result = spawnSync(TIME, ["-f", "%M", ...argv], {
    cwd: root,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
  });
  const ms = performance.now() - started;
  if (result.status !== 0) throw new Error(`${argv.join(" ")} exited ${result.status}:\n${result.stdout}\n${result.stderr}`);
  const rssKiB = Number(result.stderr.trim().split("\n").at(-1));
  return { ms, rssKiB };
}

function drizzleConfig(env) {
  const file = join(scratch, `drizzle-${Buffer.from(env.DATABASE_URL).toString("hex").slice(-24)}.config.mjs`);
  const config = { dialect: "postgresql", out: env.MIGRATIONS_DIR, dbCredentials: { url: env.DATABASE_URL } };
  writeFileSync(file, `export default ${JSON.stringify(config)};\n`);
  return file;
}

/** A drizzle-kit 0.31 folder of `count` migrations, each a table, an index and a row. */
function generate(count) {
  const dir = mkdtempSync(join(scratch, `m${count}-`));
  mkdirSync(join(dir, "meta"));
  const entries = [];
  const base = Date.UTC(2026, 0, 1);
  for (let i = 0; i < count; i++) {
    const when = base + i * 60_000;
    const tag = `${new Date(when).toISOString().replace(/[-:T]/g, "").slice(0, 14)}_bench_${i}`;
    const sql = [
      `CREATE TABLE "bench_${i}" ("id" serial PRIMARY KEY NOT NULL, "name" text NOT NULL, "created_at" timestamp DEFAULT now() NOT NULL);`,
      `CREATE INDEX "bench_${i}_name_idx" ON "bench_${i}" USING btree ("name");`,
      `INSERT INTO "bench_${i}" ("name") VALUES ('row ${i}');`,
    ].join("\n--> statement-breakpoint\n");
    writeFileSync(join(dir, `${tag}.sql`), `${sql}\n`);
    entries.push({ idx: i, version: "7", when, tag, breakpoints: true });
  }
  writeFileSync(join(dir, "meta", "_journal.json"), JSON.stringify({ version: "7", dialect: "postgresql", entries }, null, 2));
  return dir;
}

async function admin(sql) {
  const client = new pg.Client(adminUrl);
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

async function freshDatabase(label) {
  const name = `bench_${label}_${process.pid}_${created.length}`;
  await admin(`CREATE DATABASE ${name}`);
  created.push(name);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
};
const mib = (kib) => (kib / 1024).toFixed(1);
const pad = (text, width) => String(text).padEnd(width);
const padStart = (text, width) => String(text).padStart(width);

function table(headers, rows) {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => `| ${cells.map((c, i) => (i === 0 ? pad(c, widths[i]) : padStart(c, widths[i]))).join(" | ")} |`;
  const rule = `|${widths.map((w, i) => (i === 0 ? "-".repeat(w + 2) : `${"-".repeat(w + 1)}:`)).join("|")}|`;
  return [line(headers), rule, ...rows.map(line)].join("\n");
}

async function noop() {
  const dir = generate(20);
  const url = await freshDatabase("noop");
  const env = { DATABASE_URL: url, MIGRATIONS_DIR: dir };
  tools[DRIZZLE](env);
  // One warm-up each (file cache, the history table's first row), then interleaved rounds so
  // drift on the machine touches every tool alike.
  for (const tool of Object.values(tools)) tool(env);
  const samples = Object.fromEntries(Object.keys(tools).map((name) => [name, []]));
  for (let i = 0; i < RUNS; i++) {
    for (const [name, tool] of Object.entries(tools)) samples[name].push(tool(env));
  }
  const floor = median(samples[FLOOR].map((s) => s.ms));
  const drizzle = median(samples[DRIZZLE].map((s) => s.ms));
  const rows = Object.entries(samples).map(([name, list]) => {
    const ms = median(list.map((s) => s.ms));
    const rss = Math.max(...list.map((s) => s.rssKiB));
    return [name, ms.toFixed(0), (ms / floor).toFixed(2), (ms / drizzle).toFixed(2), mib(rss)];
  });
  console.log(`\nNo-op run, 20 migrations already applied (median of ${RUNS} runs each, interleaved; peak RSS is the max):\n`);
  console.log(table(["tool", "wall ms (median)", "x pg connect + SELECT 1", "x drizzle-orm script", "peak RSS MiB"], rows));
  const yomu = median(samples[JOB].map((s) => s.ms));
  const kit = median(samples["drizzle-kit migrate"].map((s) => s.ms));
  const yomuRss = Math.max(...samples[JOB].map((s) => s.rssKiB));
  console.log(
    `\ntargets (the Job's bundle): faster than drizzle-kit migrate: ${yomu < kit ? "yes" : "NO"} (${(yomu / kit).toFixed(2)}x); ` +
      `within 1.15x of pg connect + SELECT 1: ${yomu <= 1.15 * floor ? "yes" : "NO"} (${(yomu / floor).toFixed(2)}x); ` +
      `peak RSS at most 56 MiB: ${yomuRss <= 56 * 1024 ? "yes" : "NO"} (${mib(yomuRss)} MiB)`,
  );
}

async function apply() {
  const contenders = COMPARE ? [JOB, OTHER, DRIZZLE] : [JOB, DRIZZLE];
  const rows = [];
  const points = Object.fromEntries(contenders.map((c) => [c, []]));
  for (const size of SIZES) {
    const dir = generate(size);
    const result = {};
    for (const name of contenders) result[name] = [];
    for (let i = 0; i < APPLY_RUNS; i++) {
      for (const name of contenders) {
        const url = await freshDatabase(`apply${size}`);
        result[name].push(tools[name]({ DATABASE_URL: url, MIGRATIONS_DIR: dir }));
      }
    }
    // The fastest run is the least disturbed by whatever else the machine is doing.
    const bare = Math.min(...result[DRIZZLE].map((s) => s.ms));
    for (const name of contenders) {
      const ms = Math.min(...result[name].map((s) => s.ms));
      points[name].push([size, ms]);
      rows.push([
        `${name}, ${size}`,
        ms.toFixed(0),
        median(result[name].map((s) => s.ms)).toFixed(0),
        (ms / size).toFixed(2),
        (ms / bare).toFixed(2),
        mib(Math.max(...result[name].map((s) => s.rssKiB))),
      ]);
    }
  }
  console.log(`\nApplying N generated migrations to a fresh database (3 statements each; fastest and median of ${APPLY_RUNS} runs):\n`);
  console.log(table(["tool, N", "wall ms (min)", "wall ms (median)", "ms per migration", "x drizzle-orm script", "peak RSS MiB"], rows));
  console.log("");
  const fits = {};
  for (const name of contenders) {
    fits[name] = leastSquares(points[name]);
    const { slope, intercept, r2 } = fits[name];
    console.log(
      `${name}: wall ms = ${intercept.toFixed(0)} + ${slope.toFixed(2)} x N (least squares, R^2 ${r2.toFixed(3)}; linear when R^2 is near 1)`,
    );
  }
  const largest = SIZES.at(-1);
  for (const name of contenders.filter((c) => c !== DRIZZLE)) {
    const total = points[name].at(-1)[1] / points[DRIZZLE].at(-1)[1];
    const slopes = fits[name].slope / fits[DRIZZLE].slope;
    console.log(
      `\ntargets (${name}): per migration no dearer than drizzle's migrator: ${slopes <= 1 ? "yes" : "NO"} (slope ${slopes.toFixed(2)}x); ` +
        `${largest} migrations in at most 0.9x its time: ${total <= 0.9 ? "yes" : "NO"} (${total.toFixed(2)}x)`,
    );
  }
}

function leastSquares(pairs) {
  const n = pairs.length;
  const mx = pairs.reduce((a, [x]) => a + x, 0) / n;
  const my = pairs.reduce((a, [, y]) => a + y, 0) / n;
  const sxy = pairs.reduce((a, [x, y]) => a + (x - mx) * (y - my), 0);
  const sxx = pairs.reduce((a, [x]) => a + (x - mx) ** 2, 0);
  const slope = sxy / sxx;
  const intercept = my - slope * mx;
  const ssRes = pairs.reduce((a, [x, y]) => a + (y - (intercept + slope * x)) ** 2, 0);
  const ssTot = pairs.reduce((a, [, y]) => a + (y - my) ** 2, 0);
  return { slope, intercept, r2: 1 - ssRes / ssTot };
}

try {
  console.log(`node ${process.version}, server ${new URL(adminUrl).host}`);
  await noop();
  await apply();
} finally {
  for (const name of created) await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {});
  rmSync(scratch, { recursive: true, force: true });
}
