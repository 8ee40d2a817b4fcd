#!/usr/bin/env bash
# Headless Chromium for the browser tests (tests/web/test_pages_browser.py): Debian's `chromium` package,
# installed when missing (root only), as .ci/postgres.sh does for PostgreSQL. Playwright drives it; it cannot
# download browsers of its own here, so the tests launch this binary (CHROMIUM, default /usr/bin/chromium).
#
#   bash .ci/chromium.sh    install if missing, then print the binary's path
#
# No Chromium is a failure, never a skip: the browser tests run everywhere `make test` runs.
set -euo pipefail

BIN=${CHROMIUM:-/usr/bin/chromium}
die() { echo "chromium.sh: ERROR: $*" >&2; exit 1; }

if [ ! -x "$BIN" ]; then
    [ "$(id -u)" = 0 ] || die "Chromium is not installed and installing it needs root:
    sudo apt-get install -y --no-install-recommends chromium"
    command -v apt-get >/dev/null || die "Chromium is not installed and there is no apt-get to install it"
    echo "chromium.sh: installing Chromium from Debian's packages" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 || die "apt-get update failed"
    apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >&2 || die "apt-get install chromium failed"
    [ -x "$BIN" ] || die "no $BIN after installing chromium"
fi
echo "$BIN"
