#!/usr/bin/env bash
# Anonymous junk against the account API: what a flood of cheap refusals
# (401 logout without a credential, 405, 422, unknown path, malformed JSON)
# does to a legitimate client's refresh and login latency. The junk writes
# nothing, so it must cost no sync of SQLite's log and hold no writer's
# sync back. Loopback only; bounded in time; leaves nothing running.
#
# One client refreshes (and logs in) one request after the other, first
# quiet, then while JUNK_CONNS wrk connections send junk, then quiet again;
# each phase reports the median and p90 of its latencies. The ratios of the
# junk phase over the quiet ones are the figure; quiet B over quiet A is the
# noise of the same run.
#
# Usage: benches/junk_storm.sh   (JUNK_CONNS=16 REFRESHES=200 LOGINS=20 SYNC_INTERVAL=500ms)
set -euo pipefail
cd "$(dirname "$0")/.."

JUNK_CONNS=${JUNK_CONNS:-16}
REFRESHES=${REFRESHES:-200}
LOGINS=${LOGINS:-20}
SYNC_INTERVAL=${SYNC_INTERVAL:-500ms}

# shellcheck source=benches/lib.sh
source benches/lib.sh
ensure_tools
GW=$(port); ADMIN=$(port)

cat > "$work/portcullis.toml" <<CONF
[server]
listen = "127.0.0.1:$GW"
admin_listen = "127.0.0.1:$ADMIN"
threads = 1
[database]
sync_interval = "$SYNC_INTERVAL"
[accounts]
cookie_secure = false
lockout = { max_failures = 1000000, window = "1m", duration = "1s" }
throttle = { login = "1000000/m", register = "1000/m", forgot_password = "10/h" }
CONF
start_gateway "$work/portcullis.toml" "$ADMIN"

printf '%s' '{"email":"bench@example.com","password":"benchmark password 2026"}' > "$work/login.json"
curl -sf -X POST "http://127.0.0.1:$GW/auth/register" -H 'content-type: application/json' \
  --data-binary @"$work/login.json" >/dev/null

cat > "$work/junk.lua" <<'LUA'
-- Requests an anonymous caller can send for nothing, in turn.
local junk = {
  { "POST", "/auth/logout", "" },
  { "DELETE", "/auth/login", "" },
  { "POST", "/auth/register", "{}" },
  { "POST", "/auth/login", "{not json" },
  { "POST", "/auth/nowhere", "{}" },
  { "PATCH", "/auth/me", "{\"username\": \"x\"}" },
}
local n = 0
request = function()
  n = n % #junk + 1
  local j = junk[n]
  return wrk.format(j[1], j[2], { ["Content-Type"] = "application/json" }, j[3])
end
LUA

# One client, one request after the other on a keep-alive connection:
# prints "refresh_ms P50 P90" and "login_ms P50 P90".
cat > "$work/client.py" <<'PY'
import http.client, json, sys, time
port, refreshes, logins, body = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), open(sys.argv[4]).read()
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
def post(path, payload):
    start = time.perf_counter()
    conn.request("POST", path, payload, {"Content-Type": "application/json"})
    r = conn.getresponse()
    data = r.read()
    if r.status != 200:
        sys.exit(f"{path}: {r.status} {data[:200]!r}")
    return (time.perf_counter() - start) * 1000, json.loads(data)
def stats(name, xs):
    xs = sorted(xs)
    print(f"{name} {xs[len(xs) // 2]:.2f} {xs[int(len(xs) * 0.9)]:.2f}")
lat, pair = post("/auth/login", body)
token, ref = pair["refresh_token"], []
for _ in range(refreshes):
    ms, pair = post("/auth/refresh", json.dumps({"refresh_token": token}))
    token = pair["refresh_token"]
    ref.append(ms)
stats("refresh_ms", ref)
stats("login_ms", [post("/auth/login", body)[0] for _ in range(logins)])
PY

phase() { # phase NAME: the client's figures into $work/NAME
  python3 "$work/client.py" "$GW" "$REFRESHES" "$LOGINS" "$work/login.json" > "$work/$1"
}
get() { awk -v k="$2" '$1 == k { print $'"$3"' }' "$work/$1"; }
syncs() { curl -sf "http://127.0.0.1:$ADMIN/metrics" | awk '$1 == "portcullis_database_syncs_total" { print $2 }'; }

phase quiet_a
syncs_before=$(syncs)
wrk -t1 -c"$JUNK_CONNS" -d600s -s "$work/junk.lua" "http://127.0.0.1:$GW" > "$work/wrk" &
junk_pid=$!
pids+=("$junk_pid")
sleep 1
phase junk
kill -INT "$junk_pid"; wait "$junk_pid" 2>/dev/null || true
syncs_after=$(syncs)
phase quiet_b

printf '\nJunk storm benchmark: %s wrk connections of anonymous junk, one legitimate client; sync_interval %s\n' \
  "$JUNK_CONNS" "$SYNC_INTERVAL"
printf 'junk sent: %s requests/s; database syncs during the junk phase: %s (the client'"'"'s own writes)\n' \
  "$(rps "$work/wrk")" "$((syncs_after - syncs_before))"
printf '%-10s %12s %12s %12s %12s\n' phase "refresh p50" "refresh p90" "login p50" "login p90"
for p in quiet_a junk quiet_b; do
  printf '%-10s %12s %12s %12s %12s\n' "$p" "$(get $p refresh_ms 2)" "$(get $p refresh_ms 3)" \
    "$(get $p login_ms 2)" "$(get $p login_ms 3)"
done
quiet_p50() { awk -v a="$(get quiet_a "$1" 2)" -v b="$(get quiet_b "$1" 2)" 'BEGIN { print (a + b) / 2 }'; }
printf 'junk/quiet p50: refresh %s, login %s; noise (quiet B/A): refresh %s, login %s\n' \
  "$(ratio "$(get junk refresh_ms 2)" "$(quiet_p50 refresh_ms)")" \
  "$(ratio "$(get junk login_ms 2)" "$(quiet_p50 login_ms)")" \
  "$(ratio "$(get quiet_b refresh_ms 2)" "$(get quiet_a refresh_ms 2)")" \
  "$(ratio "$(get quiet_b login_ms 2)" "$(get quiet_a login_ms 2)")"
