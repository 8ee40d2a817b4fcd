#!/usr/bin/env bash
# Prints the path of an nginx binary for the scale-out proof (tools/proof_scaleout.py), installing Debian's
# package when it is missing (root only). The package's own service is never started: a policy-rc.d that
# refuses every start is in place during the install (nothing listens on port 80), and the proof runs nginx in
# the foreground with a configuration of its own on loopback ports.
set -euo pipefail

say() { echo "nginx.sh: $*" >&2; }
die() { echo "nginx.sh: ERROR: $*" >&2; exit 1; }

find_nginx() {
    local found
    for found in "$(command -v nginx 2>/dev/null || true)" /usr/sbin/nginx; do
        if [ -n "$found" ] && [ -x "$found" ]; then echo "$found"; return 0; fi
    done
    return 1
}

if ! find_nginx; then
    [ "$(id -u)" = 0 ] || die "nginx is not installed and installing it needs root:
    sudo apt-get install -y --no-install-recommends nginx"
    command -v apt-get >/dev/null || die "nginx is not installed and there is no apt-get to install it"
    say "installing nginx from Debian's packages (its service is not started)"
    policy=/usr/sbin/policy-rc.d
    created=""
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy" && created=1
        trap '[ -n "$created" ] && rm -f "$policy"' EXIT
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 || die "apt-get update failed"
    apt-get install -y -qq --no-install-recommends nginx >&2 || die "apt-get install nginx failed"
    find_nginx || die "no nginx binary after installing the package"
fi
