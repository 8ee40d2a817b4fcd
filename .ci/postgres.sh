#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the audit store tests (tests/test_audit_store.py).
#
#   bash .ci/postgres.sh [start]  install PostgreSQL from Debian's packages if it is missing (root only), start
#                                 this checkout's cluster (or find it running) and print, for `eval`:
#                                   export TEST_DATABASE_URL='postgresql+psycopg://postgres@/ldn_audit_test?host=...'
#                                   export TEST_PG_CTL='... pg_ctl -D ... -l ... -w'   (tests stop/start it)
#   bash .ci/postgres.sh url      the URL of the running cluster (prints nothing if none)
#   bash .ci/postgres.sh pgctl    the pg_ctl command of the running cluster (nothing if none)
#   bash .ci/postgres.sh stop     stop the cluster and delete it
#
# One cluster per checkout, in ${TMPDIR:-/tmp}/ldn-cds-pg-<uid>-<hash of the checkout path>: running `start`
# again (or concurrently: a lock serialises it) reuses it; a dead or broken one is rebuilt. It listens on a
# unix socket in that (0700) folder only: no TCP port, nothing to collide with, nothing reachable from outside.
# PostgreSQL refuses to run as root: as root the cluster runs as the `postgres` system user (created by the
# Debian package); as anyone else, as that user. Authentication is `trust` (the socket folder is the boundary).
#
# No PostgreSQL is a failure, never a skip: the store tests run against it everywhere.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
KEY=$(printf '%s' "$ROOT" | sha256sum | cut -c1-12)
STATE=${LDN_PG_STATE:-${TMPDIR:-/tmp}/ldn-cds-pg-$(id -u)-$KEY}
DATA=$STATE/data
LOG=$STATE/postgres.log
DB=ldn_audit_test
SUPERUSER=postgres

say() { echo "postgres.sh: $*" >&2; }
die() { echo "postgres.sh: ERROR: $*" >&2; exit 1; }

bindir() {
    local found
    if found=$(command -v initdb 2>/dev/null) && [ -x "$(dirname "$(readlink -f "$found")")/pg_ctl" ]; then
        dirname "$(readlink -f "$found")"
        return 0
    fi
    found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    if [ -n "$found" ] && [ -x "$found/initdb" ] && [ -x "$found/pg_ctl" ]; then
        echo "$found"
        return 0
    fi
    return 1
}

as_owner() {   # run a PostgreSQL server command as the cluster's owner
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_ctl_cmd() {  # the pg_ctl invocation (as one string) tests use to stop and start the server
    local prefix=""
    [ "$(id -u)" = 0 ] && prefix="runuser -u postgres -- "
    echo "${prefix}$BIN/pg_ctl -D $DATA -l $LOG -w -t 60"
}

url() { echo "postgresql+psycopg://$SUPERUSER@/$DB?host=$STATE"; }

running() { [ -f "$DATA/PG_VERSION" ] && as_owner "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

install_postgres() {
    [ "$(id -u)" = 0 ] || die "PostgreSQL is not installed and installing it needs root:
    sudo apt-get install -y --no-install-recommends postgresql"
    command -v apt-get >/dev/null || die "PostgreSQL is not installed and there is no apt-get to install it"
    say "installing PostgreSQL from Debian's packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 || die "apt-get update failed"
    apt-get install -y -qq --no-install-recommends postgresql >&2 || die "apt-get install postgresql failed"
}

start() {
    BIN=$(bindir) || { install_postgres; BIN=$(bindir) || die "no initdb/pg_ctl after installing postgresql"; }
    if [ "$(id -u)" = 0 ]; then
        id -u postgres >/dev/null 2>&1 || die "no 'postgres' system user (the Debian postgresql package creates it)"
        command -v runuser >/dev/null || die "runuser (util-linux) is needed to run PostgreSQL as 'postgres'"
    fi

    mkdir -p "$STATE"
    exec 9>"$STATE.lock"
    flock -w 300 9 || die "another .ci/postgres.sh holds $STATE.lock"
    chmod 700 "$STATE"
    [ "$(id -u)" = 0 ] && chown postgres: "$STATE"

    if running; then
        say "reusing the running cluster in $STATE"
    else
        if [ -f "$DATA/PG_VERSION" ]; then
            say "starting the existing cluster in $STATE"
            if ! as_owner "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 start >&2 9>&-; then
                say "it would not start (log below); rebuilding it"
                tail -n 20 "$LOG" >&2 || true
                rm -rf "$DATA"
            fi
        fi
        if [ ! -f "$DATA/PG_VERSION" ]; then
            rm -rf "$DATA"
            say "creating a cluster in $STATE ($("$BIN/postgres" --version))"
            as_owner "$BIN/initdb" -D "$DATA" -U "$SUPERUSER" --auth=trust --encoding=UTF8 --no-locale \
                --no-sync >"$STATE/initdb.log" 2>&1 || { cat "$STATE/initdb.log" >&2; die "initdb failed"; }
            as_owner tee -a "$DATA/postgresql.conf" >/dev/null <<EOF
# .ci/postgres.sh: a throwaway cluster for tests, reachable through its socket folder only
listen_addresses = ''
unix_socket_directories = '$STATE'
unix_socket_permissions = 0700
port = 5432
max_connections = 100
EOF
            as_owner "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 start >&2 9>&- \
                || { tail -n 50 "$LOG" >&2 || true; die "the cluster did not start"; }
        fi
    fi

    local psql=("$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$STATE" -U "$SUPERUSER" -d postgres)
    if [ -z "$("${psql[@]}" -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'")" ]; then
        "${psql[@]}" -c "CREATE DATABASE $DB" >&2 || die "could not create database $DB"
    fi
    "${psql[@]}" -d "$DB" -tAc "SELECT 1" >/dev/null || die "the cluster does not answer"
    say "PostgreSQL ready: $(url)"
    echo "export TEST_DATABASE_URL='$(url)'"
    echo "export TEST_PG_CTL='$(pg_ctl_cmd)'"
}

stop() {
    if BIN=$(bindir) && [ -d "$STATE" ]; then
        exec 9>"$STATE.lock"
        flock -w 300 9 || die "another .ci/postgres.sh holds $STATE.lock"
        if running; then
            as_owner "$BIN/pg_ctl" -D "$DATA" -w -t 60 -m fast stop >&2 || true
        fi
    fi
    rm -rf "$STATE" "$STATE.lock"
    say "stopped and removed $STATE"
}

case "${1:-start}" in
    start) start ;;
    stop) stop ;;
    url) if BIN=$(bindir) && running; then url; fi ;;
    pgctl) if BIN=$(bindir) && running; then pg_ctl_cmd; fi ;;
    *) die "usage: $0 [start|stop|url|pgctl]" ;;
esac
