#!/usr/bin/env bash
# Reviews the migrations added or changed since a commit: the lock plan yomu-migrate traces on a
# scratch copy (locks, rewrites, what they block, how long) and the lint findings, as one Markdown
# report appended to the GitHub job summary. ci.yaml runs it on every pull request and
# deploy-k8s.yaml before the production approval, so reviewer and approver read the same plan.
#
#   REVIEW_BASE=<commit> DATABASE_URL=postgres://postgres:postgres@localhost:5432/postgres \
#   scripts/migration-review.sh
#
# Settings (environment):
#   REVIEW_BASE          commit to compare with; without one no migration counts as new   required
#   DATABASE_URL         server the scratch copy is built on; its database is only read    required
#   MIGRATIONS_DIR       the migrations folder                              [drizzle/migrations]
#   PLAN_ROWS            generated rows per table in the copy, so a rewrite has a cost  [10000]
#   LINT_FINDINGS        fail (exit 6 on findings) or report (only list them; the deploy's
#                        approver decides, the pull request already failed on them)   [fail]
#   GITHUB_STEP_SUMMARY  file the report is appended to; printed on stdout when unset
#
# Exit codes: 0 clean; else plan's (1 a statement fails on the copy, 2 configuration, 7 no
# database), then lint's (6 findings). The report is written either way.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cli=(node "$repo_root/packages/migrator/bin/yomu-migrate.js")
base=${REVIEW_BASE:-}
rows=${PLAN_ROWS:-10000}
lint_findings=${LINT_FINDINGS:-fail}
summary=${GITHUB_STEP_SUMMARY:-/dev/stdout}

# A new branch's first push has no "before"; nothing is new relative to nothing.
if [[ ! $base =~ ^[0-9a-f]{40}$ || $base =~ ^0+$ ]] || ! git cat-file -e "$base^{commit}" 2>/dev/null; then
  echo "::notice::no base commit to compare with ('$base'); no migration counts as new"
  printf '## Migration review\n\nNo base commit to compare with: no migration counts as new.\n' >>"$summary"
  exit 0
fi
[[ $rows =~ ^[0-9]+$ ]] || { echo "::error::PLAN_ROWS must be a whole number, got '$rows'"; exit 2; }
[[ $lint_findings == fail || $lint_findings == report ]] || { echo "::error::LINT_FINDINGS must be fail or report, got '$lint_findings'"; exit 2; }

plan_status=0
plan=$("${cli[@]}" plan --base "$base" --rows "$rows" --format markdown) || plan_status=$?
lint_status=0
lint=$("${cli[@]}" lint --base "$base" --format markdown) || lint_status=$?

{
  printf '## Migration review (changes since %s)\n\n' "${base:0:12}"
  if [[ -n $plan ]]; then printf '%s\n\n' "$plan"; else printf '### Migration plan\n\nplan failed (exit %s); see the log.\n\n' "$plan_status"; fi
  if [[ -n $lint ]]; then printf '%s\n' "$lint"; else printf '### Lint\n\nlint failed (exit %s); see the log.\n' "$lint_status"; fi
} >>"$summary"

if ((plan_status != 0)); then
  echo "::error::yomu-migrate plan exited $plan_status"
  exit "$plan_status"
fi
if ((lint_status == 6)) && [[ $lint_findings == report ]]; then
  echo "::warning::yomu-migrate lint found problems; they are listed in the job summary"
  exit 0
fi
if ((lint_status != 0)); then echo "::error::yomu-migrate lint exited $lint_status"; fi
exit "$lint_status"
