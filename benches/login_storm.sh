#!/usr/bin/env bash
# Login benchmark: logins/s at the default argon2 cost, and what a
# concurrent login storm does to the p99 of proxied requests. Loopback
# only; bounded in time; leaves nothing running.
#
# Every round runs three back-to-back segments per proxied load: quiet,
# storm, quiet. The storm's effect is its p99 over the mean of the two quiet
# p99s around it (drift on a shared machine cancels); the two quiet segments
# against each other give the harness's own noise in the same run. Medians
# over the rounds are reported, with their ranges.
#
# Two proxied loads:
#   paced      a fixed rate (PACED_SHARE of the capacity measured at the
#              start, open loop, latency counted from when each request was
#              due): a gateway with headroom, as in production
#   saturated  wrk's closed loop with CONNS connections: as many requests as
#              the machine can push; every CPU cycle the storm takes shows
#
# With PIN=1 (the default, on 2 or more cores) the gateway gets the last core
# to itself and nginx and every load tool the others, as in production where
# clients and backends are other machines: the storm's hashing then competes
# with proxying on the gateway's own core, where the kernel lets a waking
# proxy thread preempt the idle-class hashing thread at once. PIN=0 shares
# every core among all of them (see benches/README.md for what that shows).
#
# Usage: benches/login_storm.sh   (ROUNDS=5 DURATION=5 LOADS="paced saturated"
#        PIN=1 CONNS=8 PACED_SHARE=0.5 PACED_CONNS=16 STORM_CONNS=4)
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5}
LOADS=${LOADS:-paced saturated}
ARGON2_MEMORY_KIB=${ARGON2_MEMORY_KIB:-19456}   # the default cost; lower only to diagnose
CONNS=${CONNS:-8}
PACED_SHARE=${PACED_SHARE:-0.5}
PACED_CONNS=${PACED_CONNS:-16}
STORM_CONNS=${STORM_CONNS:-4}
PIN=${PIN:-1}
cores=$(nproc)
if [ "$PIN" = 1 ] && [ "$cores" -ge 2 ]; then
  GATEWAY_PIN="taskset -c $((cores - 1))"; CLIENT_PIN="taskset -c 0-$((cores - 2))"
  layout="gateway on core $((cores - 1)), nginx and load tools on cores 0-$((cores - 2))"
else
  GATEWAY_PIN=""; CLIENT_PIN=""; layout="all processes share all $cores cores"
fi

# shellcheck source=benches/lib.sh
source benches/lib.sh
ensure_tools
UP=$(port); GW=$(port); ADMIN=$(port)
start_upstream "$UP"

cat > "$work/portcullis.toml" <<CONF
[server]
listen = "127.0.0.1:$GW"
admin_listen = "127.0.0.1:$ADMIN"
threads = 1
[accounts]
cookie_secure = false
argon2 = { memory_kib = $ARGON2_MEMORY_KIB, iterations = 2, parallelism = 1 }
lockout = { max_failures = 1000000, window = "1m", duration = "1s" }
throttle = { login = "1000000/m", register = "1000/m", forgot_password = "10/h" }
[[upstreams]]
name = "app"
backends = ["127.0.0.1:$UP"]
[[routes]]
name = "bench"
path = "/bench/**"
upstream = "app"
auth = "public"
CONF
start_gateway "$work/portcullis.toml" "$ADMIN"

EMAIL="bench@example.com"; PASSWORD="benchmark password 2026"
curl -sf -X POST "http://127.0.0.1:$GW/auth/register" -H 'content-type: application/json' \
  -d "{\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\"}" >/dev/null
cat > "$work/login.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"email":"$EMAIL","password":"$PASSWORD"}'
wrk.headers["Content-Type"] = "application/json"
LUA

PROXIED="http://127.0.0.1:$GW/bench/x"
$CLIENT_PIN wrk -t1 -c"$CONNS" -d3s "$PROXIED" > "$work/capacity"   # warm-up, and the capacity the paced rate is a share of
capacity=$(rps "$work/capacity")
paced_rate=$(awk -v c="$capacity" -v s="$PACED_SHARE" 'BEGIN { printf "%d", c * s }')

segment() { # segment LOAD FILE: one measurement of the proxied load; prints nothing
  case "$1" in
    paced) $CLIENT_PIN "$bin_dir/examples/paced_load" "$PROXIED" "$paced_rate" "$DURATION" "$PACED_CONNS" > "$2" ;;
    saturated) $CLIENT_PIN wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "$PROXIED" > "$2" ;;
  esac
}
seg_p99() { # seg_p99 FILE: p99 in ms of either tool's output
  if grep -q '^requests=' "$1"; then sed -E 's/.*p99_ms=([0-9.]+).*/\1/' "$1"; else p99 "$1"; fi
}
seg_rps() {
  if grep -q '^requests=' "$1"; then sed -E 's/.*rps=([0-9.]+).*/\1/' "$1"; else rps "$1"; fi
}
seg_errors() {
  if grep -q '^requests=' "$1"; then sed -E 's/.*errors=([0-9]+).*/\1/' "$1"; else errors "$1"; fi
}

for round in $(seq "$ROUNDS"); do
  for load in $LOADS; do
    segment "$load" "$work/$load.quiet1.$round"
    $CLIENT_PIN wrk -t1 -c"$STORM_CONNS" -d"$((DURATION + 1))s" --timeout 10s --latency -s "$work/login.lua" \
      "http://127.0.0.1:$GW/auth/login" > "$work/$load.logins.$round" &
    storm=$!
    sleep 0.5
    segment "$load" "$work/$load.storm.$round"
    wait "$storm"
    segment "$load" "$work/$load.quiet2.$round"
  done
done

per_round() { # per_round LOAD AWK_EXPR: EXPR of q1, s, q2 (the three p99s) for each round
  for round in $(seq "$ROUNDS"); do
    printf '%s %s %s\n' "$(seg_p99 "$work/$1.quiet1.$round")" "$(seg_p99 "$work/$1.storm.$round")" \
      "$(seg_p99 "$work/$1.quiet2.$round")"
  done | awk "{ q1 = \$1; s = \$2; q2 = \$3; if (q1 > 0 && q2 > 0) printf \"%.3f\\n\", $2 }"
}
summary() { # summary: "median (min-max)" of numbers on stdin
  sort -n | awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2;
    printf "%.2f (%.2f-%.2f)", m, v[1], v[NR] }'
}
col() { # col LOAD SEGMENT FUNCTION: the median of FUNCTION over the rounds
  for round in $(seq "$ROUNDS"); do "$3" "$work/$1.$2.$round"; done | median
}
errs() { # errs LOAD: failed proxied requests over every segment of LOAD
  for f in "$work/$1".quiet1.* "$work/$1".storm.* "$work/$1".quiet2.*; do seg_errors "$f"; done |
    awk '{ n += $1 } END { print n + 0 }'
}
login_errs() { # login_errs LOAD: logins that failed or that wrk gave up on (after 10 s)
  for f in "$work/$1".logins.*; do errors "$f"; done | awk '{ n += $1 } END { print n + 0 }'
}

printf '\nLogin storm benchmark: %s rounds of quiet/storm/quiet %s s segments; argon2 m=%s t=2 p=1\n%s\n' \
  "$ROUNDS" "$DURATION" "$ARGON2_MEMORY_KIB" "$layout"
printf 'capacity (wrk, %s connections): %s requests/s; paced rate: %s requests/s (%s of it, %s connections)\n' \
  "$CONNS" "$capacity" "$paced_rate" "$PACED_SHARE" "$PACED_CONNS"
printf '%-10s %10s %10s %10s %10s %22s %22s %7s %13s\n' load "quiet rps" "quiet p99" "storm p99" "logins/s" \
  "storm/quiet p99" "quiet/quiet (noise)" errors "login errors"
for load in $LOADS; do
  printf '%-10s %10.0f %10s %10s %10s %22s %22s %7s %13s\n' "$load" "$(col "$load" quiet1 seg_rps)" \
    "$(col "$load" quiet1 seg_p99)" "$(col "$load" storm seg_p99)" "$(col "$load" logins rps)" \
    "$(per_round "$load" 's / ((q1 + q2) / 2)' | summary)" "$(per_round "$load" 'q2 / q1' | summary)" \
    "$(errs "$load")" "$(login_errs "$load")"
done
echo "target: storm/quiet p99 <= 1.20 (median over rounds)"
