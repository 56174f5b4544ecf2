// yomu-migrate lint over real public drizzle-kit histories (in $CORPUS_DIR, by default a
// `corpus` folder beside the checkout; their files are never committed here), each history linted whole, as a team
// adopting yomu-migrate would first run it. Prints findings per history and per rule.
//
//   pnpm build && node bench/lint/corpus.mjs [--corpus DIR] [--module path/to/lint.js] [--by-rule]
//
// --module points at another build of lint.js (e.g. an older commit's dist) to compare.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const option = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : process.argv[i + 1];
};
const corpus = resolve(option("corpus", process.env.CORPUS_DIR ?? fileURLToPath(new URL("../../../corpus", import.meta.url))));
const modulePath = resolve(option("module", new URL("../../packages/migrator/dist/lint.js", import.meta.url).pathname));
const byRule = process.argv.includes("--by-rule");
const { lint } = await import(pathToFileURL(modulePath).href);

/** The history's files in the order drizzle applies them: the journal's, or drizzle-kit 1.0's folder names. */
function historyFiles(dir) {
  const journal = join(dir, "meta", "_journal.json");
  if (existsSync(journal)) {
    return JSON.parse(readFileSync(journal, "utf8"))
      .entries.map((e) => join(dir, `${e.tag}.sql`))
      .filter((f) => existsSync(f));
  }
  return readdirSync(dir)
    .filter((name) => statSync(join(dir, name)).isDirectory() && existsSync(join(dir, name, "migration.sql")))
    .sort()
    .map((name) => join(dir, name, "migration.sql"));
}

const rows = [];
const rules = new Map();
for (const name of readdirSync(corpus).sort()) {
  const dir = join(corpus, name);
  if (!statSync(dir).isDirectory()) continue;
  const files = historyFiles(dir);
  if (files.length === 0) continue;
  const started = performance.now();
  const findings = await lint({ files });
  const ms = Math.round(performance.now() - started);
  const counts = new Map();
  for (const f of findings) {
    counts.set(f.rule, (counts.get(f.rule) ?? 0) + 1);
    const all = rules.get(f.rule) ?? [];
    all.push(`${name}/${f.file.slice(dir.length + 1)}:${f.line}`);
    rules.set(f.rule, all);
  }
  const top = [...counts]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 4)
    .map(([rule, n]) => `${rule} ${n}`)
    .join(", ");
  rows.push(`| ${name} | ${files.length} | ${findings.length} | ${ms} | ${top} |`);
}
console.log("| history | files | findings | ms | most frequent |\n| --- | ---: | ---: | ---: | --- |");
for (const row of rows) console.log(row);
if (byRule) {
  for (const [rule, where] of [...rules].sort((a, b) => b[1].length - a[1].length)) {
    console.log(`\n${rule} (${where.length}): ${where.slice(0, 8).join("  ")}${where.length > 8 ? " …" : ""}`);
  }
}
