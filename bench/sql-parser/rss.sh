#!/usr/bin/env bash
# Peak RSS of the migration Job's command (apps/api/dist/shared/db/migrate.js, the CLI the Job
# runs) on a no-op run and on a run applying 200 generated migrations, to show what reading SQL
# with PostgreSQL's parser (libpg-query, WASM) costs against the Job's 128Mi request. A no-op run
# must not load the parser at all.
#
# usage: bench/sql-parser/rss.sh [runs]   (DATABASE_URL: a superuser URL, default local PostgreSQL)
# needs: pnpm build, GNU time (apt-get install -y time), psql.
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-3}
admin=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
db="bench_sql_parser_$$"
url="${admin%/*}/$db"
dir=$(mktemp -d)
trap 'psql "$admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null; rm -rf "$dir"' EXIT

# 200 migrations, each a table, an index and a row, as drizzle-kit 0.31 lays them out.
node --input-type=module - "$dir" <<'JS'
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
const dir = process.argv[2];
mkdirSync(join(dir, "meta"));
const entries = [];
for (let i = 0; i < 200; i++) {
  const when = Date.UTC(2026, 0, 1) + i * 60_000;
  const tag = `${String(i).padStart(4, "0")}_bench_${i}`;
  const sql = [
    `CREATE TABLE "bench_${i}" ("id" serial PRIMARY KEY NOT NULL, "name" text NOT NULL);`,
    `CREATE INDEX "bench_${i}_name_idx" ON "bench_${i}" USING btree ("name");`,
    `INSERT INTO "bench_${i}" ("name") VALUES ('row ${i}');`,
  ].join("\n--> statement-breakpoint\n");
  writeFileSync(join(dir, `${tag}.sql`), `${sql}\n`);
  entries.push({ idx: i, version: "7", when, tag, breakpoints: true });
}
writeFileSync(join(dir, "meta", "_journal.json"), JSON.stringify({ version: "7", dialect: "postgresql", entries }));
JS

peak() {
  local out
  out=$(mktemp)
  DATABASE_URL=$url LOG_FORMAT=json /usr/bin/time -f %M -o "$out" node apps/api/dist/shared/db/migrate.js up --dir "$dir" >/dev/null
  tail -1 "$out"
  rm -f "$out"
}

for i in $(seq "$runs"); do
  psql "$admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" -qc "CREATE DATABASE $db" >/dev/null
  apply=$(peak)
  noop=$(peak)
  printf 'run %d  applying 200: %6d KiB (%5.1f MiB)  no-op: %6d KiB (%5.1f MiB)\n' "$i" "$apply" "$(echo "$apply/1024" | bc -l)" "$noop" "$(echo "$noop/1024" | bc -l)"
done
