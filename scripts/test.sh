#!/usr/bin/env bash
# Runs the whole Portcullis test suite: unit tests and the integration tests
# that start the real gateway in front of echo upstreams on loopback, then
# prints one total line ("N passed, N failed").
# Usage: scripts/test.sh [extra cargo test arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh

# Account suites run on SQLite and, via PORTCULLIS_TEST_DATABASE_URL, on
# PostgreSQL (found or started here).
# shellcheck source=scripts/test-services.sh
source scripts/test-services.sh
echo "PostgreSQL for tests: ${PORTCULLIS_TEST_DATABASE_URL:-none}" >&2
log=$(mktemp)
trap 'rm -f "$log"; stop_throwaway_postgres' EXIT
status=0
cargo test --no-fail-fast --lib --bins --tests "$@" 2>&1 | tee "$log" || status=$?
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "Total: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
