#!/usr/bin/env bash
# The test harness's own check: deliberately failing tests, run through the project's own vitest
# config in a throw-away copy of this checkout, must make vitest exit non-zero. Once, an exit hook
# in a dependency turned every failed run into exit 0; this is how that never comes back silently.
# Needs `pnpm install` and `pnpm build` done. Runs on the embedded PostgreSQL, and also on
# DATABASE_URL's server when that is set. Exit 0 when every canary was caught, 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d "${TMPDIR:-/tmp}/yomu-canary-XXXXXX")
trap 'rm -rf "$work"' EXIT

copy="$work/checkout"
mkdir "$copy"
tar -C . --exclude=./.git --exclude=./.data --exclude=node_modules -cf - . | tar -C "$copy" -xf -
# node_modules as links to this checkout's: the copy runs the same vitest, config and packages.
while IFS= read -r folder; do ln -s "$PWD/$folder" "$copy/$folder"; done < <(find . -path ./.git -prune -o -name node_modules -type d -prune -print)

file=test/harness-canary.test.ts
# canary WHAT BODY [env arguments...]: one deliberately failing file; vitest must exit non-zero.
canary() {
  local what=$1 body=$2 code=0
  shift 2
  printf '%s\n' "$body" >"$copy/$file"
  (cd "$copy" && env "$@" VITEST_JSON_REPORT="$work/report.json" pnpm exec vitest run "$file") >"$work/log" 2>&1 || code=$?
  if [ "$code" -eq 0 ]; then
    cat "$work/log"
    echo "canary: $what made vitest exit 0: the harness hides failures" >&2
    exit 1
  fi
  echo "canary: $what made vitest exit $code: good"
}

failing_test='import { expect, it } from "vitest";
it("fails on purpose", () => expect(1).toBe(2));'
canary "a failing test" "$failing_test" -u DATABASE_URL
# It failed as the one failed test it is, not because the copy could not run at all.
node -e 'if (require(process.argv[1]).numFailedTests !== 1) { console.error("canary: the failing test did not run"); process.exit(1); }' "$work/report.json"
if [ -n "${DATABASE_URL:-}" ]; then canary "a failing test on DATABASE_URL" "$failing_test"; fi
canary "a test file that cannot load" 'throw new Error("canary: this file fails to load");' -u DATABASE_URL
canary "an unhandled rejection in a passing test" 'import { it } from "vitest";
it("passes, but leaves a rejection nobody handles", () => { Promise.reject(new Error("canary")); });' -u DATABASE_URL
