// verify on real drizzle-kit histories: for each folder, a fresh database built by `yomu-migrate
// up` and another built by drizzle-orm's own migrate(), then `yomu-migrate verify --json` on each.
// A database built only from its own history's migrations has no drift: every finding is a false
// alarm. Each database is verified twice: as the superuser (the scratch-database comparison) and
// as a role without CREATEDB (the snapshot fallback). Prints one row per run, and each finding.
// Usage (after `pnpm build`): node bench/verify/corpus.mjs [CORPUS_DIR] [--only NAME]
// CORPUS_DIR (default: a `corpus` folder beside the checkout) holds one migrations folder per directory; never committed.
// DATABASE_URL picks the server (a superuser URL); default the local PostgreSQL on 5432.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { admin, freshDatabase } from "./support.mjs";

const root = fileURLToPath(new URL("../../", import.meta.url));
const args = process.argv.slice(2);
const onlyAt = args.indexOf("--only");
const only = onlyAt === -1 ? undefined : args[onlyAt + 1];
const corpus = args.find((a, i) => !a.startsWith("--") && args[i - 1] !== "--only") ?? process.env.CORPUS_DIR ?? join(root, "../corpus");
const cli = join(root, "packages/migrator/bin/yomu-migrate.js");

const histories = readdirSync(corpus)
  .filter((name) => statSync(join(corpus, name)).isDirectory() && (!only || name === only))
  .sort();

// A role that may read but not CREATE DATABASE: verify then falls back to the snapshot comparison.
const fallbackRole = `bench_verify_nocreatedb_${process.pid}`;
await admin(`CREATE ROLE ${fallbackRole} LOGIN NOCREATEDB`);

function asFallbackRole(url) {
  const u = new URL(url);
  u.username = fallbackRole;
  u.password = "";
  return u.toString();
}

function yomu(command, url, dir) {
  const run = spawnSync(process.execPath, [cli, command, "--dir", dir, ...(command === "verify" ? ["--json"] : [])], {
    env: { PATH: process.env.PATH, DATABASE_URL: url },
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
  });
  return run;
}

// bench/corpus's script also runs drizzle-orm 1.0's migrate() on drizzle-kit 1.0's
// folders; without it, drizzle-orm 0.45 applies the journal layout only.
const drizzleScript = ["bench/corpus/drizzle-migrate.mjs", "bench/migrator/drizzle-migrate.mjs"]
  .map((p) => join(root, p))
  .find((p) => existsSync(p));

function drizzleMigrate(url, dir) {
  return spawnSync(process.execPath, [drizzleScript], {
    env: {
      PATH: process.env.PATH,
      DATABASE_URL: url,
      MIGRATIONS_DIR: dir,
      LAYOUT: existsSync(join(dir, "meta", "_journal.json")) ? "journal" : "folders",
    },
    encoding: "utf8",
  });
}

/** Lets the fallback role read drizzle's table in the database at `url`, as verify needs. */
async function grantRead(url) {
  const client = new pg.Client(url);
  await client.connect();
  try {
    await client.query(`GRANT USAGE ON SCHEMA drizzle TO ${fallbackRole}; GRANT SELECT ON ALL TABLES IN SCHEMA drizzle TO ${fallbackRole}`);
  } finally {
    await client.end();
  }
}

function lastError(run) {
  const lines = `${run.stdout}\n${run.stderr}`.trim().split("\n");
  const migrationFailed = lines.find((l) => l.includes('"event":"migration.failed"'));
  if (migrationFailed) return JSON.parse(migrationFailed).message.slice(0, 200);
  const failed = lines.map((l) => l.trim()).filter((l) => /"severity":"ERROR"|Error|error:/i.test(l));
  const text = failed[0] ?? lines[lines.length - 1] ?? "";
  try {
    return JSON.parse(text).message.slice(0, 160);
  } catch {
    return text.slice(0, 160);
  }
}

const rows = [];
for (const history of histories) {
  const dir = join(corpus, history);
  if (!existsSync(dir)) continue;
  for (const builder of ["yomu-migrate up", "drizzle migrate()"]) {
    const db = await freshDatabase(history.slice(0, 20));
    try {
      const built = builder === "yomu-migrate up" ? yomu("up", db.url, dir) : drizzleMigrate(db.url, dir);
      if (built.status !== 0) {
        rows.push({ history, builder, result: `not built (exit ${built.status}): ${lastError(built)}` });
        continue;
      }
      await admin(`GRANT CONNECT ON DATABASE "${db.name}" TO ${fallbackRole}`);
      await grantRead(db.url);
      for (const [how, url] of [
        ["shadow", db.url],
        ["fallback", asFallbackRole(db.url)],
      ]) {
        const started = performance.now();
        const verified = yomu("verify", url, dir);
        const ms = Math.round(performance.now() - started);
        const label = `${builder}${how === "fallback" ? ", role without CREATEDB" : ""}`;
        let result;
        try {
          result = JSON.parse(verified.stdout);
        } catch {
          rows.push({ history, builder: label, result: `verify exit ${verified.status}: ${lastError(verified)}` });
          continue;
        }
        const drift = result.problems.filter((p) => !["pending", "checksum", "out-of-order"].includes(p.kind));
        rows.push({
          history,
          builder: label,
          result: `exit ${verified.status}, comparison ${result.comparison}, ${drift.length} finding(s), ${result.problems.length - drift.length} other problem(s), ${ms} ms`,
          findings: result.problems.map((p) => `${p.kind}: ${p.message}`),
        });
      }
    } finally {
      await db.drop();
    }
  }
}

await admin(`DROP ROLE IF EXISTS ${fallbackRole}`);

console.log("| history | built by | verify |");
console.log("|---|---|---|");
for (const row of rows) console.log(`| ${row.history} | ${row.builder} | ${row.result.replace(/\|/g, "\\|")} |`);
for (const row of rows.filter((r) => r.findings?.length)) {
  console.log(`\n${row.history} (${row.builder}):`);
  for (const finding of row.findings.slice(0, 40)) console.log(`  ${finding}`);
}
