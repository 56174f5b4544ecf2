// Peak RSS of `yomu-migrate up` and `status` on one large generated migration (issue 13: a 50 MB
// file of 380,000 INSERTs peaked at 641 MB in up and 212 MB in status; the Job's limit is 256Mi,
// the target 160 MiB for up). Also checks that a file over the applier's limit is refused, named.
// Usage (after `pnpm build`): node bench/memory/run.mjs [--rows 380000] [--no-breakpoints] [--cli FILE]
// --cli measures another yomu-migrate entry point (a build of an earlier commit) on the same file,
// so before and after come from one run on one load.
// DATABASE_URL picks the server (a superuser URL); default the local PostgreSQL on 5432.
// Needs GNU time (/usr/bin/time).
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, statSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { timed, withClient } from "../lib/process.mjs";

const root = fileURLToPath(new URL("../../", import.meta.url));
const adminUrl = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const argv = process.argv.slice(2);
const cli = argv.includes("--cli") ? argv[argv.indexOf("--cli") + 1] : join(root, "packages/migrator/bin/yomu-migrate.js");
const rowsFlag = argv.indexOf("--rows");
const ROWS = rowsFlag === -1 ? 380_000 : Number(argv[rowsFlag + 1]);
const breakpoints = !argv.includes("--no-breakpoints");
const LIMIT_MIB = 160;

const scratch = mkdtempSync(join(tmpdir(), "yomu-memory-"));
const name = `bench_memory_${process.pid}`;
try {
  const dir = generate(join(scratch, "migrations"));
  const file = join(dir, "0001_bulk_rows.sql");
  const bytes = statSync(file).size;
  process.stdout.write(
    `generated ${dir}: ${ROWS} INSERTs, ${(bytes / 1e6).toFixed(1)} MB${breakpoints ? ", one per breakpoint" : ", no breakpoints"}\n\n`,
  );
  await admin(`CREATE DATABASE ${name} TEMPLATE template0`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const env = { ...process.env, DATABASE_URL: url.toString(), MIGRATIONS_DIR: dir, LOG_FORMAT: "json" };

  const results = [
    ["status (all pending)", measure(["status", "--json"], env)],
    ["up (applies the file)", measure(["up"], env)],
    ["status (all applied)", measure(["status", "--json"], env)],
    ["up (no-op)", measure(["up"], env)],
  ];
  process.stdout.write("| command | exit | wall s | peak RSS MiB |\n| --- | ---: | ---: | ---: |\n");
  for (const [label, r] of results)
    process.stdout.write(`| ${label} | ${r.status} | ${(r.ms / 1000).toFixed(1)} | ${r.peakMiB.toFixed(1)} |\n`);
  const up = results[1][1];
  if (up.status === 0) {
    const { rows } = await withClient(url.toString(), (client) => client.query("SELECT count(*)::int AS n FROM bulk_rows"));
    process.stdout.write(`\nrows in bulk_rows: ${rows[0].n} (expected ${ROWS})\n`);
    process.stdout.write(
      `up peak ${up.peakMiB.toFixed(1)} MiB: ${up.peakMiB <= LIMIT_MIB ? "within" : "OVER"} the ${LIMIT_MIB} MiB target\n`,
    );
  } else {
    // A piece over the query limit (a large file with --no-breakpoints) is refused, named.
    process.stdout.write(`\nup refused the file: ${refusal(up)}\n`);
    process.exitCode = 1;
  }

  // Over the limit: refused before anything runs, with the size and the limit named.
  const big = generate(join(scratch, "too-big"), 65 * 1024 * 1024);
  await admin(`CREATE DATABASE ${name}_big TEMPLATE template0`);
  url.pathname = `/${name}_big`;
  const refused = measure(["up"], { ...env, DATABASE_URL: url.toString(), MIGRATIONS_DIR: big });
  const { rows: tables } = await withClient(url.toString(), (client) =>
    client.query("SELECT to_regclass('bulk_rows') IS NOT NULL AS present"),
  );
  process.stdout.write(`\nover the limit, anything applied: ${tables[0].present ? "YES" : "no"}`);
  process.stdout.write(`\na 65 MiB file: exit ${refused.status}, peak ${refused.peakMiB.toFixed(1)} MiB: ${refusal(refused)}\n`);
} finally {
  await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin(`DROP DATABASE IF EXISTS ${name}_big WITH (FORCE)`);
  rmSync(scratch, { recursive: true, force: true });
}

/** The refusal's message: the log line naming a size in MiB. */
function refusal(run) {
  const line = run.stdout.split("\n").find((l) => l.includes("MiB"));
  return line ? JSON.parse(line).message : run.stdout.slice(-300);
}

/** A journal folder with a table and one migration of ROWS INSERTs (or padding up to `size` bytes). */
function generate(dir, size) {
  mkdirSync(join(dir, "meta"), { recursive: true });
  const when = Date.UTC(2026, 0, 5);
  const entries = [
    { idx: 0, version: "7", when, tag: "0000_table", breakpoints: true },
    { idx: 1, version: "7", when: when + 60_000, tag: "0001_bulk_rows", breakpoints: true },
  ];
  writeFileSync(join(dir, "meta", "_journal.json"), JSON.stringify({ version: "7", dialect: "postgresql", entries }));
  writeFileSync(join(dir, "0000_table.sql"), "CREATE TABLE bulk_rows (id integer PRIMARY KEY, label text NOT NULL, note text);\n");
  const fd = openSync(join(dir, "0001_bulk_rows.sql"), "w");
  const separator = breakpoints ? "\n--> statement-breakpoint\n" : "\n";
  // 380,000 rows of this width make the 50 MB file.
  const note = "some text to carry along, lorem";
  let written = 0;
  let batch = "";
  for (let i = 1; size ? written < size : i <= ROWS; i++) {
    batch += `INSERT INTO bulk_rows (id, label, note) VALUES (${i}, 'row-${i}', '${note}');${separator}`;
    if (batch.length > 1 << 20) {
      written += writeSync(fd, batch);
      batch = "";
    }
  }
  written += writeSync(fd, batch);
  closeSync(fd);
  return dir;
}

function measure(args, env) {
  return timed(process.execPath, [cli, ...args], env);
}

function admin(sql) {
  return withClient(adminUrl, (client) => client.query(sql));
}
