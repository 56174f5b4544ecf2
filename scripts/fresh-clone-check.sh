#!/usr/bin/env bash
# Runs .ci/run (or the command given) in a fresh clone of this checkout's HEAD, inside a new 0700
# folder under $HOME, with no DATABASE_URL: as root, the README's two commands must work where
# the server's `postgres` user cannot enter. The clone is removed afterwards.
set -euo pipefail
source_repo=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)
home=$(mktemp -d "${HOME:?}/yomu-fresh-XXXXXX")
chmod 700 "$home"
clone="$home/yomu"
cleanup() {
  rm -rf "$home"
  # As root the clone's `pnpm start` data was placed outside it (see README, "Developing").
  rm -rf "/var/lib/yomu-dev-db/postgres-$(printf %s "$clone/.data/postgres" | sha256sum | cut -c1-12)"
}
trap cleanup EXIT
git clone --quiet --no-hardlinks "$source_repo" "$clone"
cd "$clone"
echo "fresh clone of $(git rev-parse --short HEAD) in $home (mode $(stat -c %a "$home")) as $(id -un)"
[ $# -gt 0 ] || set -- bash .ci/run
# A private npm prefix: the README's `npm install -g pnpm` lands in the clone's folder and leaves
# the machine's own pnpm, which other checkouts may be using, alone.
export NPM_CONFIG_PREFIX="$home/npm-global" PATH="$home/npm-global/bin:$PATH"
env -u DATABASE_URL CI=true "$@"
