#!/usr/bin/env bash
# Sourced by scripts/test.sh: makes PORTCULLIS_TEST_DATABASE_URL point at a
# PostgreSQL server the tests may create databases on. Uses the variable if
# already set, else a server on 127.0.0.1:5432, else starts a throwaway
# server from the installed binaries (stopped on exit), else says loudly
# that the PostgreSQL variants are skipped. Also installs aiosmtpd, the SMTP
# server the mail test talks to.

pg_bin() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

start_throwaway_postgres() {
  local bin dir port run_as
  bin=$(pg_bin)
  [ -n "$bin" ] && [ -x "$bin/initdb" ] || return 1
  dir=$(mktemp -d /tmp/portcullis-pg.XXXXXX)
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  run_as=()
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || return 1
    chown postgres "$dir"
    run_as=(runuser -u postgres --)
  fi
  "${run_as[@]}" "$bin/initdb" -D "$dir/data" -U postgres --auth=trust >/dev/null || return 1
  "${run_as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
    -o "-p $port -k $dir -h 127.0.0.1 -c fsync=off" start >/dev/null || return 1
  PG_THROWAWAY_STOP=("${run_as[@]}" "$bin/pg_ctl" -D "$dir/data" -m fast stop)
  PG_THROWAWAY_DIR=$dir
  export PORTCULLIS_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
  echo "started a throwaway PostgreSQL on 127.0.0.1:$port for the tests" >&2
}

stop_throwaway_postgres() {
  if [ -n "${PG_THROWAWAY_STOP+x}" ]; then
    "${PG_THROWAWAY_STOP[@]}" >/dev/null 2>&1 || true
    rm -rf "$PG_THROWAWAY_DIR"
    unset PG_THROWAWAY_STOP
  fi
}

if [ -z "${PORTCULLIS_TEST_DATABASE_URL:-}" ]; then
  if command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h 127.0.0.1 -p 5432 \
     && psql -h 127.0.0.1 -U postgres -d postgres -Atc 'select 1' >/dev/null 2>&1; then
    export PORTCULLIS_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres"
  elif ! start_throwaway_postgres; then
    echo "!!! no PostgreSQL server reachable and none could be started:" >&2
    echo "!!! the PostgreSQL variants of the account tests are SKIPPED (SQLite still runs)." >&2
  fi
fi
trap stop_throwaway_postgres EXIT

# The SMTP suite sends through a real SMTP server: Python's aiosmtpd,
# installed here when Python is present and the package is not.
if command -v python3 >/dev/null 2>&1 && ! python3 -c 'import aiosmtpd' >/dev/null 2>&1; then
  echo "installing aiosmtpd (the SMTP server of the mail tests)..." >&2
  python3 -m pip install --quiet --disable-pip-version-check aiosmtpd >&2 \
    || python3 -m pip install --quiet --disable-pip-version-check --user aiosmtpd >&2 \
    || true
fi
if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import aiosmtpd' >/dev/null 2>&1; then
  echo "!!! python3 with aiosmtpd is not available: the SMTP mail test is SKIPPED." >&2
fi
