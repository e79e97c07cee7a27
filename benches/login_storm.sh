#!/usr/bin/env bash
# Login benchmark: logins/s at the default argon2 cost, and what a
# concurrent login storm does to the p99 of proxied requests. Loopback
# only; bounded in time; leaves nothing running.
#
# Two proxied loads:
#   paced      a fixed rate (PACED_SHARE of the capacity measured at the
#              start, open loop, latency counted from when each request was
#              due): a gateway with headroom, as in production. One
#              `examples/paced_load` run of PACED_SECONDS switches the storm
#              on and off underneath it in WINDOW-second windows (quiet A,
#              storm, quiet B, repeated) and classes every request by the
#              window it was due in, leaving out each window's first quarter
#              (the previous window's tail). Fine interleaving spreads the
#              machine's own hiccups evenly over the classes; quiet B against
#              quiet A is the noise of the same run.
#   saturated  wrk's closed loop with CONNS connections: as many requests as
#              the machine can push; every CPU cycle the storm takes shows.
#              Every round runs three back-to-back DURATION-second segments,
#              quiet, storm, quiet; the storm's effect is its p99 over the
#              mean of the quiet p99s around it, the median over the rounds
#              is reported with its range, and quiet/quiet is the noise.
#
# With PIN=1 (the default, on 2 or more cores) the gateway gets the last core
# to itself and nginx and every load tool the others, as in production where
# clients and backends are other machines: the storm's hashing then competes
# with proxying on the gateway's own core, where the kernel lets a waking
# proxy thread preempt the idle-class hashing thread at once. PIN=0 shares
# every core among all of them (see benches/README.md for what that shows).
#
# Usage: benches/login_storm.sh   (LOADS="paced saturated" PIN=1 STORM_CONNS=32
#        PACED_SECONDS=90 WINDOW=3 PACED_SHARE=0.2 PACED_CONNS=16
#        ROUNDS=5 DURATION=5 CONNS=8
#        DATABASE_URL=a SQLite file in the scratch directory SYNC_INTERVAL=500ms)
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5}
LOADS=${LOADS:-paced saturated}
ARGON2_MEMORY_KIB=${ARGON2_MEMORY_KIB:-19456}   # the default cost; lower only to diagnose
CONNS=${CONNS:-8}
PACED_SHARE=${PACED_SHARE:-0.2}
PACED_SECONDS=${PACED_SECONDS:-90}
WINDOW=${WINDOW:-3}
PACED_CONNS=${PACED_CONNS:-16}
STORM_CONNS=${STORM_CONNS:-32}   # enough to keep hashing busy while each login waits up to sync_interval for its group sync
PIN=${PIN:-1}
DATABASE_URL=${DATABASE_URL:-}
SYNC_INTERVAL=${SYNC_INTERVAL:-500ms}   # database.sync_interval: "0s" syncs for every login
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
[database]
${DATABASE_URL:+url = \"$DATABASE_URL\"}
sync_interval = "$SYNC_INTERVAL"
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

# The account the storm logs in to: the same JSON registers it and logs in.
printf '%s' '{"email":"bench@example.com","password":"benchmark password 2026"}' > "$work/login.json"
curl -sf -X POST "http://127.0.0.1:$GW/auth/register" -H 'content-type: application/json' \
  --data-binary @"$work/login.json" >/dev/null
cat > "$work/login.lua" <<LUA
wrk.method = "POST"
wrk.body = '$(cat "$work/login.json")'
wrk.headers["Content-Type"] = "application/json"
LUA

PROXIED="http://127.0.0.1:$GW/bench/x"
$CLIENT_PIN wrk -t1 -c"$CONNS" -d3s "$PROXIED" > "$work/capacity"   # warm-up, and the capacity the paced rate is a share of
capacity=$(rps "$work/capacity")
paced_rate=$(awk -v c="$capacity" -v s="$PACED_SHARE" 'BEGIN { printf "%d", c * s }')

disk_flushes() { # cache flushes the disk under the scratch directory has completed (empty if unknown)
  local dev
  dev=$(basename "$(df --output=source "$work" | tail -n1)")
  awk 'NF >= 17 { print $16 }' "/sys/class/block/$dev/stat" 2>/dev/null || true
}
paced_run() { # the interleaved paced run: one line per class, then the logins line
  local flushes_before flushes_after
  flushes_before=$(disk_flushes)
  $CLIENT_PIN "$bin_dir/examples/paced_load" --storm "http://127.0.0.1:$GW/auth/login" \
    --storm-body "$work/login.json" --storm-conns "$STORM_CONNS" --window "$WINDOW" \
    --guard "$(awk -v w="$WINDOW" 'BEGIN { print w / 4 }')" \
    "$PROXIED" "$paced_rate" "$PACED_SECONDS" "$PACED_CONNS" > "$work/paced"
  flushes_after=$(disk_flushes)
  [ -n "$flushes_before" ] && [ -n "$flushes_after" ] &&
    awk -v n=$((flushes_after - flushes_before)) -v s="$PACED_SECONDS" \
      'BEGIN { printf "%.1f\n", n / s }' > "$work/flushes"
  return 0
}
field() { # field CLASS NAME: a value from the paced run's output
  awk -v c="$1" -v f="$2" '$1 == "class=" c || (c == "" && $1 ~ /^logins=/) {
    for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == f) print kv[2] } }' "$work/paced"
}

saturated() { # saturated FILE: one DURATION-second wrk segment of proxied load
  $CLIENT_PIN wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "$PROXIED" > "$1"
}
saturated_rounds() { # quiet/storm/quiet wrk segments, ROUNDS times
  local round storm
  for round in $(seq "$ROUNDS"); do
    saturated "$work/quiet1.$round"
    $CLIENT_PIN wrk -t1 -c"$STORM_CONNS" -d"$((DURATION + 1))s" --timeout 10s --latency -s "$work/login.lua" \
      "http://127.0.0.1:$GW/auth/login" > "$work/logins.$round" &
    storm=$!
    sleep 0.5
    saturated "$work/storm.$round"
    wait "$storm"
    saturated "$work/quiet2.$round"
  done
}
per_round() { # per_round AWK_EXPR: EXPR of q1, s, q2 (the three p99s) for each round
  for round in $(seq "$ROUNDS"); do
    printf '%s %s %s\n' "$(p99 "$work/quiet1.$round")" "$(p99 "$work/storm.$round")" "$(p99 "$work/quiet2.$round")"
  done | awk "{ q1 = \$1; s = \$2; q2 = \$3; if (q1 > 0 && q2 > 0) printf \"%.3f\\n\", $1 }"
}
summary() { # summary: "median (min-max)" of numbers on stdin
  local sorted
  sorted=$(sort -n)
  printf '%.2f (%.2f-%.2f)' "$(median <<< "$sorted")" "$(head -n1 <<< "$sorted")" "$(tail -n1 <<< "$sorted")"
}
sum_over() { # sum_over FUNCTION SEGMENT...: FUNCTION summed over those segments of every round
  local fn=$1 round seg
  shift
  for round in $(seq "$ROUNDS"); do for seg in "$@"; do "$fn" "$work/$seg.$round"; done; done |
    awk '{ n += $1 } END { print n + 0 }'
}

for load in $LOADS; do
  case "$load" in
    paced) paced_run ;;
    saturated) saturated_rounds ;;
    *) echo "unknown load: $load" >&2; exit 2 ;;
  esac
done

printf '\nLogin storm benchmark: argon2 m=%s t=2 p=1, %s storm connections; %s\n' \
  "$ARGON2_MEMORY_KIB" "$STORM_CONNS" "$layout"
printf 'capacity (wrk, %s connections): %s requests/s\n' "$CONNS" "$capacity"
printf '%-10s %10s %10s %10s %10s %22s %22s %7s %13s\n' load "quiet rps" "quiet p99" "storm p99" "logins/s" \
  "storm/quiet p99" "quiet/quiet (noise)" errors "login errors"
for load in $LOADS; do
  if [ "$load" = paced ]; then
    printf '%-10s %10s %10s %10s %10s %22s %22s %7s %13s\n' paced "$(field quiet rps)" "$(field quiet p99_ms)" \
      "$(field storm p99_ms)" "$(field '' logins_per_s)" "$(ratio "$(field storm p99_ms)" "$(field quiet p99_ms)")" \
      "$(ratio "$(field quiet_b p99_ms)" "$(field quiet_a p99_ms)") (B/A)" \
      "$(( $(field quiet_a errors) + $(field storm errors) + $(field quiet_b errors) ))" "$(field '' login_errors)"
  else
    printf '%-10s %10.0f %10s %10s %10s %22s %22s %7s %13s\n' saturated "$(col rps quiet1)" "$(col p99 quiet1)" \
      "$(col p99 storm)" "$(col rps logins)" "$(per_round 's / ((q1 + q2) / 2)' | summary)" \
      "$(per_round 'q2 / q1' | summary)" "$(sum_over errors quiet1 storm quiet2)" "$(sum_over errors logins)"
  fi
done
[[ " $LOADS " == *" paced "* ]] && printf 'paced: %s requests/s (%s of capacity) over %s connections for %s s, windows of %s s\n' \
  "$paced_rate" "$PACED_SHARE" "$PACED_CONNS" "$PACED_SECONDS" "$WINDOW"
[ -s "$work/flushes" ] && printf 'disk cache flushes during the paced run: %s/s (the storm runs a third of it)\n' "$(cat "$work/flushes")"
[[ " $LOADS " == *" saturated "* ]] && printf 'saturated: %s rounds of quiet/storm/quiet %s s segments\n' "$ROUNDS" "$DURATION"
echo "target: storm/quiet p99 <= 1.20"
