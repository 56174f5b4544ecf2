// Applies real drizzle-kit histories with drizzle's own migrator and with yomu-migrate, each on a
// fresh database, and compares what they built: `pg_dump --schema-only` and drizzle's rows. Then
// each takes over the other's database (both must find nothing to do), and `yomu-migrate verify`
// and `yomu-migrate lint` (every file) run on the yomu-built database. Prints one table. One file,
// as every bench here, to be read top to bottom.
//
// Usage (after `pnpm build`):
//   node bench/corpus/run.mjs <folder> [<folder>...]   any drizzle-kit folder, either layout
//   node bench/corpus/run.mjs --all [<root>]            every folder under <root> (default $CORPUS_DIR, else a `corpus` folder beside the checkout)
//   --json                                              one JSON object per history instead of the table
//   --prelude <file.sql>                                run on both databases first (e.g. roles a platform provides)
// DATABASE_URL picks the server (a superuser URL); default the local PostgreSQL on 5432. Drizzle's
// migrator is drizzle-orm 0.45 for the journal layout and drizzle-orm 1.0 (drizzle-orm-v1) for
// drizzle-kit 1.0's folders. A history may have `<name>.bench.json` beside it, for what its platform
// provides and this server lacks: {"preludes": ["x.sql"] (run on both databases first, paths beside
// the json), "edits": [{"file", "from", "to"}] (made to a scratch copy both tools then apply),
// "notes": "why"}. The table marks such histories.
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { jsonLines, timed, withClient } from "../lib/process.mjs";

const root = fileURLToPath(new URL("../../", import.meta.url));
const adminUrl = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const cli = join(root, "packages/migrator/bin/yomu-migrate.js");
const drizzleScript = join(root, "bench/corpus/drizzle-migrate.mjs");
const scratch = mkdtempSync(join(tmpdir(), "yomu-corpus-"));

const args = process.argv.slice(2);
const json = take("--json");
const preludeFlag = value("--prelude");
const all = args.indexOf("--all");
let folders = args.filter((a) => !a.startsWith("--"));
if (all !== -1) {
  const corpus = resolve(folders[0] ?? process.env.CORPUS_DIR ?? join(root, "../corpus"));
  folders = readdirSync(corpus)
    .map((d) => join(corpus, d))
    .filter((d) => statSync(d).isDirectory())
    .sort();
}
if (folders.length === 0) {
  process.stderr.write("usage: node bench/corpus/run.mjs <folder>... | --all [<root>]\n");
  process.exit(2);
}

function take(flag) {
  const i = args.indexOf(flag);
  if (i === -1) return false;
  args.splice(i, 1);
  return true;
}
function value(flag) {
  const i = args.indexOf(flag);
  if (i === -1) return undefined;
  const [, v] = args.splice(i, 2);
  return v;
}

const results = [];
try {
  for (const [n, folder] of folders.entries()) {
    const result = await benchOne(resolve(folder), n);
    results.push(result);
    if (json) process.stdout.write(`${JSON.stringify(result)}\n`);
    else process.stderr.write(`${result.history}: ${result.verdict}\n`);
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
if (!json) printTable(results);

async function benchOne(original, n) {
  const history = basename(original);
  const configPath = join(original, "..", `${history}.bench.json`);
  const config = existsSync(configPath) ? JSON.parse(readFileSync(configPath, "utf8")) : {};
  const folder = config.edits?.length ? editedCopy(original, config.edits) : original;
  const layout = existsSync(join(folder, "meta/_journal.json")) ? "journal" : "folders";
  const count =
    layout === "journal"
      ? JSON.parse(readFileSync(join(folder, "meta/_journal.json"), "utf8")).entries.length
      : readdirSync(folder).filter((d) => existsSync(join(folder, d, "migration.sql"))).length;
  const result = { history, layout, count, notes: [], adapted: Boolean(config.preludes?.length || config.edits?.length) };
  if (config.notes) result.notes.push(`bench adaptation: ${config.notes}`);
  const stamp = `${process.pid}_${n}`;
  const drizzleDb = await createDatabase(`corpus_drizzle_${stamp}`);
  const yomuDb = await createDatabase(`corpus_yomu_${stamp}`);
  try {
    const preludes = [...(preludeFlag ? [resolve(preludeFlag)] : []), ...(config.preludes ?? []).map((p) => join(original, "..", p))];
    for (const prelude of preludes) {
      for (const url of [drizzleDb.url, yomuDb.url]) await withClient(url, (client) => client.query(readFileSync(prelude, "utf8")));
    }
    const env = (url) => ({ ...process.env, DATABASE_URL: url, MIGRATIONS_DIR: folder, LAYOUT: layout, LOG_FORMAT: "json" });

    const drizzleRun = timed(process.execPath, [drizzleScript], env(drizzleDb.url));
    result.drizzleMs = drizzleRun.ms;
    result.drizzleOk = drizzleRun.status === 0;
    if (!result.drizzleOk) result.notes.push(`drizzle failed: ${lastLine(drizzleRun.stderr)}`);

    const yomuRun = timed(process.execPath, [cli, "up"], env(yomuDb.url));
    result.yomuMs = yomuRun.ms;
    result.yomuPeakMiB = yomuRun.peakMiB;
    result.yomuOk = yomuRun.status === 0;
    result.yomuWarnings = jsonLines(yomuRun.stdout)
      .filter((e) => e.severity === "WARNING")
      .map((e) => e.message);
    if (!result.yomuOk) result.notes.push(`yomu exit ${yomuRun.status}: ${failure(yomuRun)}`);
    result.ratio = result.drizzleMs ? result.yomuMs / result.drizzleMs : null;

    const [drizzleDump, yomuDump] = [schemaDump(drizzleDb.url), schemaDump(yomuDb.url)];
    result.schemaIdentical = drizzleDump === yomuDump;
    if (!result.schemaIdentical) result.notes.push(`schema differs: ${diffFile(history, drizzleDump, yomuDump)}`);
    const [drizzleRows, yomuRows] = [await rows(drizzleDb.url), await rows(yomuDb.url)];
    result.rowsIdentical = JSON.stringify(drizzleRows) === JSON.stringify(yomuRows);
    if (!result.rowsIdentical) result.notes.push(`rows differ: drizzle ${drizzleRows.length}, yomu ${yomuRows.length}`);

    // Takeovers: yomu-migrate on drizzle's database and drizzle on yomu's must both do nothing.
    if (result.drizzleOk) {
      const again = timed(process.execPath, [cli, "up"], env(drizzleDb.url));
      const finished = jsonLines(again.stdout).find((e) => e.event === "migration.run.finished");
      result.yomuTakesOver = again.status === 0 && finished?.status === "noop";
      if (!result.yomuTakesOver)
        result.notes.push(`yomu on drizzle's database: exit ${again.status}, ${finished?.status ?? failure(again)}`);
    }
    if (result.yomuOk) {
      const before = await rows(yomuDb.url);
      const again = timed(process.execPath, [drizzleScript], env(yomuDb.url));
      const after = await rows(yomuDb.url);
      result.drizzleTakesOver =
        again.status === 0 && JSON.stringify(before) === JSON.stringify(after) && schemaDump(yomuDb.url) === yomuDump;
      if (!result.drizzleTakesOver)
        result.notes.push(
          `drizzle on yomu's database: exit ${again.status}, rows ${before.length} -> ${after.length} ${lastLine(again.stderr)}`,
        );

      const verify = timed(process.execPath, [cli, "verify", "--json"], env(yomuDb.url));
      const report = parseLast(verify.stdout);
      result.verifyFindings = report?.problems?.length ?? null;
      if (report?.problems?.length) result.verifyKinds = countBy(report.problems.map((p) => p.kind));
      if (!report) result.notes.push(`verify exit ${verify.status}: ${failure(verify)}`);

      const files = sqlFiles(folder, layout);
      const lint = timed(process.execPath, [cli, "lint", "--json", ...files], env(yomuDb.url));
      const lintReport = parseLast(lint.stdout);
      result.lintFindings = lintReport?.findings?.length ?? null;
      if (lintReport?.findings?.length) result.lintRules = countBy(lintReport.findings.map((f) => f.rule));
      if (!lintReport) result.notes.push(`lint exit ${lint.status}: ${failure(lint)}`);
    }
  } finally {
    await drizzleDb.drop();
    await yomuDb.drop();
  }
  result.verdict =
    result.drizzleOk && result.yomuOk && result.schemaIdentical && result.rowsIdentical && result.yomuTakesOver && result.drizzleTakesOver
      ? "same"
      : result.notes.join("; ");
  return result;
}

/** A scratch copy of `folder` with each edit made once; a missing `from` is an error, not a no-op. */
function editedCopy(folder, edits) {
  const copy = join(scratch, `${basename(folder)}-edited`);
  rmSync(copy, { recursive: true, force: true });
  cpSync(folder, copy, { recursive: true });
  for (const edit of edits) {
    const path = join(copy, edit.file);
    const text = readFileSync(path, "utf8");
    if (!text.includes(edit.from)) throw new Error(`bench edit: ${edit.file} has no ${JSON.stringify(edit.from)}`);
    writeFileSync(path, text.replace(edit.from, edit.to));
  }
  return copy;
}

function sqlFiles(folder, layout) {
  if (layout === "folders") {
    return readdirSync(folder)
      .filter((d) => existsSync(join(folder, d, "migration.sql")))
      .sort((a, b) => a.localeCompare(b))
      .map((d) => join(folder, d, "migration.sql"));
  }
  const journal = JSON.parse(readFileSync(join(folder, "meta/_journal.json"), "utf8"));
  return journal.entries.map((e) => join(folder, `${e.tag}.sql`)).filter((f) => existsSync(f));
}

function failure(run) {
  const failed = jsonLines(run.stdout).find((e) => e.severity === "ERROR" || e.severity === "CRITICAL");
  return (failed?.message ?? lastLine(run.stderr) ?? "").slice(0, 400);
}

function parseLast(stdout) {
  const line = stdout
    .trim()
    .split("\n")
    .reverse()
    .find((l) => l.startsWith("{") && !l.includes('"event"'));
  if (!line) return undefined;
  try {
    return JSON.parse(line);
  } catch {
    return undefined;
  }
}

function lastLine(text) {
  return (text ?? "").trim().split("\n").at(-1)?.slice(0, 400) ?? "";
}

function countBy(list) {
  const counts = {};
  for (const item of list) counts[item] = (counts[item] ?? 0) + 1;
  return counts;
}

function schemaDump(url) {
  const dump = spawnSync("pg_dump", ["--schema-only", "--no-owner", "--exclude-table=drizzle.migration_runs", url], {
    encoding: "utf8",
    maxBuffer: 256 * 1024 * 1024,
  });
  if (dump.status !== 0) throw new Error(`pg_dump failed: ${dump.stderr}`);
  return (
    dump.stdout
      .split("\n")
      // pg_dump 15.14+ fences the dump with \restrict <random key>, different every time.
      .filter((l) => !l.startsWith("--") && l.trim() !== "" && !l.startsWith("\\restrict") && !l.startsWith("\\unrestrict"))
      .join("\n")
  );
}

function diffFile(history, a, b) {
  const path = join(tmpdir(), `corpus-${history}.schema.diff`);
  const left = join(scratch, "a.sql");
  const right = join(scratch, "b.sql");
  writeFileSync(left, a);
  writeFileSync(right, b);
  const diff = spawnSync("diff", ["-u", left, right], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  writeFileSync(path, diff.stdout);
  return path;
}

function rows(url) {
  return withClient(url, async (client) => {
    const { rows: present } = await client.query("SELECT to_regclass('drizzle.__drizzle_migrations') IS NOT NULL AS p");
    if (!present[0].p) return [];
    const { rows: cols } = await client.query(
      "SELECT column_name FROM information_schema.columns WHERE table_schema = 'drizzle' AND table_name = '__drizzle_migrations'",
    );
    const hasName = cols.some((c) => c.column_name === "name");
    const { rows: list } = await client.query(
      `SELECT hash, created_at${hasName ? ", name" : ""} FROM drizzle.__drizzle_migrations ORDER BY id`,
    );
    return list;
  });
}

async function createDatabase(name) {
  await withClient(adminUrl, async (admin) => {
    await admin.query(`DROP DATABASE IF EXISTS ${name}`);
    await admin.query(`CREATE DATABASE ${name} TEMPLATE template0`);
  });
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: () => withClient(adminUrl, (admin) => admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)),
  };
}

function printTable(list) {
  const header = [
    "history",
    "layout",
    "count",
    "drizzle ms",
    "yomu ms",
    "ratio",
    "schema same",
    "rows same",
    "takeovers",
    "verify",
    "lint",
  ];
  const lines = list.map((r) => [
    r.adapted ? `${r.history}*` : r.history,
    r.layout === "journal" ? "journal" : "v1",
    String(r.count),
    r.drizzleOk ? String(r.drizzleMs) : `fail (${r.drizzleMs})`,
    r.yomuOk ? String(r.yomuMs) : `fail (${r.yomuMs})`,
    r.ratio ? r.ratio.toFixed(2) : "-",
    r.schemaIdentical ? "yes" : "NO",
    r.rowsIdentical ? "yes" : "NO",
    `${r.yomuTakesOver ? "yes" : "NO"}/${r.drizzleTakesOver ? "yes" : "NO"}`,
    r.verifyFindings ?? "-",
    r.lintFindings ?? "-",
  ]);
  const rowsOut = [header, header.map(() => "---"), ...lines].map((cells) => `| ${cells.join(" | ")} |`);
  process.stdout.write(`${rowsOut.join("\n")}\n`);
  process.stdout.write("\ntakeovers: yomu-migrate up on drizzle's database / drizzle's migrator on yomu's; both must do nothing\n");
  process.stdout.write("* the server lacks what the history's platform provides: stand-ins run first (<history>.bench.json)\n");
  for (const r of list) {
    const details = [
      ...r.notes,
      ...(r.yomuWarnings?.length ? [`${r.yomuWarnings.length} warning(s), e.g. ${r.yomuWarnings[0]}`] : []),
      ...(r.verifyKinds ? [`verify: ${JSON.stringify(r.verifyKinds)}`] : []),
      ...(r.lintRules ? [`lint: ${JSON.stringify(r.lintRules)}`] : []),
    ];
    if (details.length) process.stdout.write(`\n${r.history}:\n  ${details.join("\n  ")}\n`);
  }
}
