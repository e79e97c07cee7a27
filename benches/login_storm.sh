#!/usr/bin/env bash
# Login benchmark: logins/s at the default argon2 cost, and the proxied
# request p99 with and without a concurrent login storm, measured in one
# run on this machine. Loopback only; bounded in time; leaves nothing
# running. Usage: benches/login_storm.sh  (DURATION=10 CONNS=8 STORM_CONNS=4)
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}                             # alternating baseline/storm pairs; medians reported
STORM_NICE=${STORM_NICE:-0}                     # nice value of the storm *client* (diagnosis: harness vs gateway)
ARGON2_MEMORY_KIB=${ARGON2_MEMORY_KIB:-19456}   # the default cost; lower only to diagnose
CONNS=${CONNS:-8}
STORM_CONNS=${STORM_CONNS:-4}

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
wrk -t1 -c"$CONNS" -d2s "$PROXIED" >/dev/null   # warm-up
for round in $(seq "$ROUNDS"); do
  wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "$PROXIED" > "$work/baseline.$round"
  nice -n "$STORM_NICE" wrk -t1 -c"$STORM_CONNS" -d"$((DURATION + 2))s" --latency -s "$work/login.lua" "http://127.0.0.1:$GW/auth/login" > "$work/storm.$round" &
  storm=$!
  sleep 1
  wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "$PROXIED" > "$work/during.$round"
  wait "$storm"
done

col() { # col FUNCTION PREFIX: the median of FUNCTION over the rounds' files
  for round in $(seq "$ROUNDS"); do "$1" "$work/$2.$round"; done | median
}
errs() { for round in $(seq "$ROUNDS"); do errors "$work/$1.$round"; done | awk '{ n += $1 } END { print n + 0 }'; }
base_p99=$(col p99 baseline); during_p99=$(col p99 during)
printf '\nLogin storm benchmark (%s rounds x %s s, medians; %s proxied connections, %s login connections at nice %s, %s cores)\n' \
  "$ROUNDS" "$DURATION" "$CONNS" "$STORM_CONNS" "$STORM_NICE" "$(nproc)"
printf '%-34s %12s %10s %8s\n' "run" "requests/s" "p99 ms" "errors"
printf '%-34s %12s %10s %8s\n' "proxied, no storm" "$(col rps baseline)" "$base_p99" "$(errs baseline)"
printf '%-34s %12s %10s %8s\n' "proxied, during login storm" "$(col rps during)" "$during_p99" "$(errs during)"
printf '%-34s %12s %10s %8s\n' "logins (argon2 m=$ARGON2_MEMORY_KIB t=2 p=1)" "$(col rps storm)" "$(col p99 storm)" "$(errs storm)"
awk -v a="$base_p99" -v b="$during_p99" 'BEGIN { printf "proxied p99 during storm / without: %.2f x (target <= 1.20)\n", b / a }'
