#!/usr/bin/env bash
# A throwaway PostgreSQL server on 127.0.0.1 for the sweep tests (tests/sweeps/test_postgres.py):
#
#   eval "$(bash shell_scripts/test_postgres.sh start)"   # exports LIGHTNAS_TEST_POSTGRES_URL
#   python -m pytest -q tests/sweeps
#   bash shell_scripts/test_postgres.sh stop "$LIGHTNAS_TEST_PGDATA"
#
# `start` installs Debian's `postgresql` when no server binaries are found (root only), creates a
# cluster in a new temporary folder (as the `postgres` user when run as root: initdb refuses
# root), starts it on a free loopback port with trust authentication and creates the database
# lightnas_test. It prints only the export lines on stdout; everything else goes to stderr. It
# touches no existing cluster, so it can run again, or beside another one, at any time.
set -euo pipefail

server_bin() {
    local found
    found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    if [ -z "$found" ] && command -v pg_ctl >/dev/null; then
        found=$(dirname "$(readlink -f "$(command -v pg_ctl)")")
    fi
    echo "$found"
}

as_owner() {  # run a server command as the cluster's owner
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

start() {
    local bin dir port
    bin=$(server_bin)
    if [ -z "$bin" ]; then
        if [ "$(id -u)" != 0 ]; then
            echo "PostgreSQL is not installed: apt-get install postgresql (as root)" >&2
            exit 1
        fi
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
        bin=$(server_bin)
    fi
    if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
        useradd --system --home-dir /var/lib/postgresql postgres
    fi
    dir=$(mktemp -d /tmp/lightnas-postgres.XXXXXX)
    [ "$(id -u)" = 0 ] && chown postgres: "$dir"
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    as_owner "$bin/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 >&2
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir" start >&2
    as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres lightnas_test >&2
    echo "export LIGHTNAS_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:$port/lightnas_test"
    echo "export LIGHTNAS_TEST_PGDATA=$dir/data"
}

stop() {
    local data=${1:?usage: test_postgres.sh stop DATA_DIR}
    [ -d "$data" ] || return 0
    as_owner "$(server_bin)/pg_ctl" -D "$data" -m fast -w stop >&2 || true
    rm -rf "$(dirname "$data")"
}

case "${1:-}" in
    start) start ;;
    stop) stop "${2:-}" ;;
    *) echo "usage: $0 start | stop DATA_DIR" >&2; exit 2 ;;
esac
