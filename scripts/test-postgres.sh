#!/usr/bin/env bash
# Starts a throwaway PostgreSQL server for the tests (Debian's `postgresql` package, recipe in
# ../shared/STACK.md) and prints `export TEST_DATABASE_URL=…` and `export TEST_POSTGRES_DIR=…`.
#   eval "$(./scripts/test-postgres.sh start)"     start, set the variables
#   ./scripts/test-postgres.sh stop "$TEST_POSTGRES_DIR"
# The server runs as the `postgres` user (initdb refuses root), listens on 127.0.0.1 only, on a
# free port, with `trust` authentication, and lives in a temp dir that `stop` removes.
set -euo pipefail

as_postgres() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres -- "$@"; fi
}

bin_dir() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [ -x "$dir/initdb" ] || { echo "PostgreSQL server binaries not found (apt-get install postgresql)" >&2; exit 1; }
  echo "$dir"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

case "${1:-}" in
  start)
    B=$(bin_dir)
    T=$(mktemp -d)
    chmod o+x "$T"
    mkdir "$T/pg"
    chown postgres "$T/pg" 2>/dev/null || sudo chown postgres "$T/pg"
    as_postgres "$B/initdb" -D "$T/pg/d" -A trust -U postgres >"$T/initdb.log" 2>&1
    PORT=$(free_port)
    # fsync stays on: the durability tests assert what a real server does.
    as_postgres "$B/pg_ctl" -D "$T/pg/d" -l "$T/pg/log" -w start \
      -o "-p $PORT -k $T/pg -c listen_addresses=127.0.0.1 -c max_connections=300" >/dev/null
    echo "export TEST_DATABASE_URL=postgres://postgres@127.0.0.1:$PORT/postgres"
    echo "export TEST_POSTGRES_DIR=$T"
    echo "export TEST_POSTGRES_BIN=$B"
    ;;
  stop)
    T=${2:?usage: stop DIR}
    B=$(bin_dir)
    as_postgres "$B/pg_ctl" -D "$T/pg/d" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$T"
    ;;
  *)
    echo "usage: $0 start | stop DIR" >&2
    exit 2
    ;;
esac
