#!/usr/bin/env bash
# Peak memory of the migration Job's command (k8s/yomu/migration-job.yaml: the CLI bundled into
# packages/migrator/dist/yomu-migrate.mjs) on a no-op run (schema already current), beside the
# unbundled entry `pnpm db:migrate` runs and the floor, a script that connects with pg and runs
# one query. The pod's memory limit counts every process in the container, so besides GNU time's
# %M (the largest single process) this samples the whole process tree and reports the peak of
# its summed RSS. Last, the Job's command on runs that apply every migration, to compare with
# the Job's 128Mi request. Target (issue 17): the no-op at most 56 MiB.
#
# usage: bench/job-rss/measure.sh [runs]   (DATABASE_URL: a superuser URL, default local PostgreSQL 15)
# needs: pnpm build, GNU time (apt-get install -y time), ps.
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-5}
admin=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
db="bench_job_rss_$$"
url="${admin%/*}/$db"

psql "$admin" -qc "CREATE DATABASE $db" >/dev/null
trap 'psql "$admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null' EXIT
job=(node packages/migrator/dist/yomu-migrate.mjs up)
DATABASE_URL=$url LOG_FORMAT=json "${job[@]}" >/dev/null

# Peak summed RSS (KiB) of a process and all its descendants, sampled every 10ms until it exits.
tree_peak() {
  "$@" >/dev/null &
  local root=$! peak=0 now
  while kill -0 "$root" 2>/dev/null; do
    now=$(ps -e -o pid=,ppid=,rss= | awk -v root="$root" '
      { parent[$1] = $2; rss[$1] = $3 }
      END {
        for (p in parent) { q = p; while (q != "" && q != root && q in parent && q != 1) q = parent[q]; if (q == root) sum += rss[p] }
        print sum + 0
      }')
    [ "$now" -gt "$peak" ] && peak=$now
    sleep 0.01
  done
  wait "$root"
  echo "$peak"
}

measure() {
  local label=$1
  shift
  local i tree out
  out=$(mktemp)
  for i in $(seq "$runs"); do
    DATABASE_URL=$url LOG_FORMAT=json /usr/bin/time -f %M -o "$out" "$@" >/dev/null
    tree=$(DATABASE_URL=$url LOG_FORMAT=json tree_peak "$@")
    printf '%-46s run %d  largest process %6d KiB  process tree %6d KiB\n' "$label" "$i" "$(tail -1 "$out")" "$tree"
  done
  rm -f "$out"
}

measure "${job[*]}" "${job[@]}"
measure "node apps/api/dist/shared/db/migrate.js up" node apps/api/dist/shared/db/migrate.js up
measure "node bench/migrator/pg-query.mjs" node bench/migrator/pg-query.mjs

# For scale: the Job's command on a run that applies every shipped migration to an empty database.
out=$(mktemp)
for i in $(seq "$runs"); do
  psql "$admin" -qc "CREATE DATABASE ${db}_apply" >/dev/null
  DATABASE_URL="${url}_apply" LOG_FORMAT=json /usr/bin/time -f %M -o "$out" "${job[@]}" >/dev/null
  psql "$admin" -qc "DROP DATABASE ${db}_apply WITH (FORCE)" >/dev/null
  printf '%-46s run %d  largest process %6d KiB  (applying)\n' "${job[*]}" "$i" "$(tail -1 "$out")"
done
rm -f "$out"
