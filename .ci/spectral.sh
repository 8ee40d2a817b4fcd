#!/usr/bin/env bash
# Spectral (npm @stoplight/spectral-cli, pinned in tools/spectral/package-lock.json) for the contract lint
# (tests/web/test_openapi_doc.py): installed into tools/spectral/node_modules with `npm ci`. Node.js and npm come
# from Debian's packages when missing (root only), as .ci/postgres.sh does for PostgreSQL.
#
#   bash .ci/spectral.sh    install if missing or out of date, then print the binary's path
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=$ROOT/tools/spectral
BIN=$DIR/node_modules/.bin/spectral
die() { echo "spectral.sh: ERROR: $*" >&2; exit 1; }

if ! command -v npm >/dev/null; then
    [ "$(id -u)" = 0 ] || die "npm is not installed and installing it needs root:
    sudo apt-get install -y --no-install-recommends nodejs npm"
    command -v apt-get >/dev/null || die "npm is not installed and there is no apt-get to install it"
    echo "spectral.sh: installing Node.js and npm from Debian's packages" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 || die "apt-get update failed"
    apt-get install -y -qq --no-install-recommends nodejs npm >&2 || die "apt-get install nodejs npm failed"
fi
if [ ! -x "$BIN" ] || [ "$DIR/package-lock.json" -nt "$BIN" ]; then
    echo "spectral.sh: npm ci in tools/spectral" >&2
    (cd "$DIR" && npm ci --no-audit --no-fund --loglevel=error >&2) || die "npm ci failed"
    touch "$BIN"
fi
echo "$BIN"
