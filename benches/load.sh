#!/usr/bin/env bash
# Proxied-request load harness (issue 4): Portcullis against what users run
# today, side by side on this machine, in one run. Every row proxies to the
# same fixed upstream (nginx, one worker, a small 200 with keep-alive) and
# is measured for the same duration and connection count; rows alternate
# for ROUNDS rounds and medians are reported.
#   direct                 wrk straight to the upstream (the ceiling)
#   nginx                  nginx proxy_pass with upstream keep-alive, one worker
#   haproxy-jwt            HAProxy jwt_verify (HS256) + exp check, one thread
#   pingora-bare           the smallest pingora proxy (examples/bare_pingora.rs),
#                          one thread: the framework's own floor
#   portcullis-open        a public route (auth off), one worker thread
#   portcullis-jwt         a gateway-issued JWT (verified-token cache warm)
#   portcullis-jwt-cold-*  a different valid JWT on every request, per algorithm
#   portcullis-apikey      an API key (cache warm)
#   portcullis-rbac        JWT + roles + org_param + rate limit (all stages on)
# Columns: requests/s, p50/p99 ms, the proxy process's CPU µs per request
# (utime+stime over the run / requests: far steadier than requests/s on a
# shared 2-core machine) and ratios to nginx and to portcullis-open; then
# the gateway's idle and peak RSS. Also written as JSON to
# target/load/results.json. Loopback only, bounded in time, leaves nothing
# running. SOAK=1 instead runs portcullis-jwt at a moderate rate for
# SOAK_SECONDS (600) and reports RSS growth.
# Usage: benches/load.sh   (DURATION=10 ROUNDS=3 CONNS=32 COLD_ALGS="EdDSA ES256 RS256 HS256")
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-32}
COLD_ALGS=${COLD_ALGS:-EdDSA ES256 RS256 HS256}
SOAK=${SOAK:-0}
SOAK_SECONDS=${SOAK_SECONDS:-600}

# shellcheck source=benches/lib.sh
source benches/lib.sh
ensure_tools haproxy
UP=$(port); NGX=$(port); HAP=$(port); BARE=$(port); GW=$(port); ADMIN=$(port)
start_upstream "$UP"

# --- nginx as a reverse proxy (what users run today) ---
mkdir -p "$work/proxy/logs"
cat > "$work/proxy/nginx.conf" <<CONF
worker_processes 1;
daemon off;
error_log $work/proxy/logs/error.log;
pid $work/proxy/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  upstream app { server 127.0.0.1:$UP; keepalive 64; }
  server {
    listen 127.0.0.1:$NGX;
    keepalive_requests 100000;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
CONF
"$(command -v nginx || echo /usr/sbin/nginx)" -p "$work/proxy" -c "$work/proxy/nginx.conf" &
pids+=($!)
nginx_master=$!

# --- HAProxy verifying an HS256 JWT ---
HS_SECRET=$(head -c 32 /dev/urandom | base64 | tr -d '=+/' | head -c 40)
HS_TOKEN=$(python3 - "$HS_SECRET" <<'PY'
import base64, hashlib, hmac, json, sys, time
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
body = b64(json.dumps({"sub": "u", "exp": int(time.time()) + 3600}).encode())
sig = b64(hmac.new(sys.argv[1].encode(), f"{head}.{body}".encode(), hashlib.sha256).digest())
print(f"{head}.{body}.{sig}")
PY
)
cat > "$work/haproxy.cfg" <<CONF
global
  nbthread 1
defaults
  mode http
  timeout connect 2s
  timeout client 30s
  timeout server 30s
frontend fe
  bind 127.0.0.1:$HAP
  http-request set-var(txn.bearer) http_auth_bearer
  http-request set-var(txn.alg) var(txn.bearer),jwt_header_query('\$.alg')
  http-request deny unless { var(txn.alg) -m str HS256 }
  http-request deny unless { var(txn.bearer),jwt_verify(txn.alg,"$HS_SECRET") -m int 1 }
  http-request set-var(txn.exp) var(txn.bearer),jwt_payload_query('\$.exp','int')
  http-request set-var(txn.now) date()
  http-request deny if { var(txn.exp),sub(txn.now) -m int lt 0 }
  default_backend be
backend be
  http-reuse always
  server s1 127.0.0.1:$UP
CONF
"$(command -v haproxy || echo /usr/sbin/haproxy)" -db -f "$work/haproxy.cfg" >"$work/haproxy.log" 2>&1 &
pids+=($!)
haproxy_pid=$!

# --- the bare pingora proxy: what pingora alone costs ---
"$bin_dir/examples/bare_pingora" "127.0.0.1:$BARE" "127.0.0.1:$UP" >"$work/bare.log" 2>&1 &
pids+=($!)
bare_pid=$!

# --- Portcullis ---
gateway_config() { # gateway_config FILE PORT ADMIN ALGORITHM
  cat > "$1" <<CONF
[server]
listen = "127.0.0.1:$2"
admin_listen = "127.0.0.1:$3"
threads = 1
[tokens]
algorithm = "$4"
signing_key = "file:data/signing-$4.key"
[accounts]
cookie_secure = false
argon2 = { memory_kib = 1024, iterations = 1, parallelism = 1 }
[[upstreams]]
name = "app"
backends = ["127.0.0.1:$UP"]
[[routes]]
name = "open"
path = "/open/**"
upstream = "app"
auth = "public"
[[routes]]
name = "jwt"
path = "/jwt/**"
upstream = "app"
auth = "jwt"
[[routes]]
name = "apikey"
path = "/key/**"
upstream = "app"
auth = "api_key"
[[routes]]
name = "rbac"
path = "/rbac/orgs/{org_id}/**"
upstream = "app"
auth = "jwt"
org_param = "org_id"
roles = ["member"]
rate_limit = { key = "user", rate = "1000000/s", burst = 1000000 }
CONF
}
gateway_config "$work/portcullis.toml" "$GW" "$ADMIN" EdDSA
start_gateway "$work/portcullis.toml" "$ADMIN"
main_pid=$gateway_pid
sleep 1
idle_rss=$(awk '/VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$main_pid/status")

json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
api() { # api METHOD PATH [TOKEN] [BODY]
  curl -sf -X "$1" "http://127.0.0.1:$GW$2" -H 'content-type: application/json' \
    ${3:+-H "authorization: Bearer $3"} ${4:+-d "$4"}
}
EMAIL="load@example.com"; PASSWORD="benchmark password 2026"
api POST /auth/register "" "{\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\"}" >/dev/null
login=$(api POST /auth/login "" "{\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\"}")
ACCESS=$(echo "$login" | json "['access_token']")
REFRESH=$(echo "$login" | json "['refresh_token']")
KEY=$(api POST /auth/api-keys "$ACCESS" '{"name":"load"}' | json "['key']")
ORG=$(api POST /auth/orgs "$ACCESS" '{"name":"Load"}' | json "['id']")
# The org shows in tokens from the next refresh on.
ACCESS=$(api POST /auth/refresh "" "{\"refresh_token\":\"$REFRESH\"}" | json "['access_token']")

# --- cold JWT instances: one gateway per algorithm, restarted per round ---
declare -A cold_port cold_admin
for alg in $COLD_ALGS; do
  cold_port[$alg]=$(port); cold_admin[$alg]=$(port)
  mkdir -p "$work/cold-$alg"
  gateway_config "$work/cold-$alg/portcullis.toml" "${cold_port[$alg]}" "${cold_admin[$alg]}" "$alg"
  case "$alg" in RS256) per_sec=5000 ;; ES256) per_sec=8000 ;; *) per_sec=30000 ;; esac
  "$bin_dir/examples/mint_tokens" "$work/cold-$alg/portcullis.toml" $((per_sec * DURATION)) > "$work/cold-$alg/tokens"
  cat > "$work/cold-$alg/cold.lua" <<LUA
local tokens, i = {}, 0
for line in io.lines("$work/cold-$alg/tokens") do tokens[#tokens + 1] = line end
request = function()
  i = i + 1
  if i > #tokens then wrapped = true; i = 1 end
  return wrk.format("GET", "/jwt/x", { ["Authorization"] = "Bearer " .. tokens[i] })
end
done = function() if wrapped then io.write("WRAPPED\n") end end
LUA
done

rows=(direct nginx haproxy-jwt pingora-bare portcullis-open portcullis-jwt)
for alg in $COLD_ALGS; do rows+=("portcullis-jwt-cold-$alg"); done
rows+=(portcullis-apikey portcullis-rbac)

run_row() { # run_row ROW OUT: one wrk run; writes OUT (wrk output) and OUT.cpu (proxy ticks, or -)
  local url pid header=() script=() alg=""
  case "$1" in
    direct) url="http://127.0.0.1:$UP/x"; pid="" ;;
    nginx) url="http://127.0.0.1:$NGX/x"; pid=nginx ;;
    haproxy-jwt) url="http://127.0.0.1:$HAP/x"; pid=$haproxy_pid; header=(-H "Authorization: Bearer $HS_TOKEN") ;;
    pingora-bare) url="http://127.0.0.1:$BARE/x"; pid=$bare_pid ;;
    portcullis-open) url="http://127.0.0.1:$GW/open/x"; pid=$main_pid ;;
    portcullis-jwt) url="http://127.0.0.1:$GW/jwt/x"; pid=$main_pid; header=(-H "Authorization: Bearer $ACCESS") ;;
    portcullis-apikey) url="http://127.0.0.1:$GW/key/x"; pid=$main_pid; header=(-H "X-API-Key: $KEY") ;;
    portcullis-rbac) url="http://127.0.0.1:$GW/rbac/orgs/$ORG/x"; pid=$main_pid; header=(-H "Authorization: Bearer $ACCESS") ;;
    portcullis-jwt-cold-*)
      alg=${1#portcullis-jwt-cold-}
      start_gateway "$work/cold-$alg/portcullis.toml" "${cold_admin[$alg]}"
      pid=$gateway_pid; url="http://127.0.0.1:${cold_port[$alg]}/jwt/x"; script=(-s "$work/cold-$alg/cold.lua") ;;
  esac
  local before=0 after=0
  [ -n "$pid" ] && before=$(proxy_ticks "$pid")
  wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "${header[@]}" "${script[@]}" "$url" > "$2"
  if [ -n "$pid" ]; then after=$(proxy_ticks "$pid"); echo $((after - before)) > "$2.cpu"; else echo - > "$2.cpu"; fi
  if [ -n "$alg" ]; then kill "$gateway_pid"; wait "$gateway_pid" 2>/dev/null || true; fi
}
proxy_ticks() { # proxy_ticks PID|nginx: CPU ticks of the proxy (nginx: master + workers)
  if [ "$1" = nginx ]; then
    local t=0 p
    for p in $nginx_master $(pgrep -P "$nginx_master"); do t=$((t + $(cpu_ticks "$p"))); done
    echo "$t"
  else
    cpu_ticks "$1"
  fi
}

if [ "$SOAK" = 1 ]; then
  # Moderate rate: each connection waits 2 ms between requests.
  printf 'request = function() return wrk.format("GET", "/jwt/x", { ["Authorization"] = "Bearer %s" }) end\ndelay = function() return 2 end\n' "$ACCESS" > "$work/soak.lua"
  wrk -t1 -c8 -d"${SOAK_SECONDS}s" -s "$work/soak.lua" "http://127.0.0.1:$GW/jwt/x" > "$work/soak.out" &
  soak=$!
  sleep 60
  first=$(awk '/VmRSS/ { print $2 }' "/proc/$main_pid/status")
  while kill -0 "$soak" 2>/dev/null; do
    printf '%s RSS %s MiB\n' "$(date -u +%H:%M:%S)" "$(awk '/VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$main_pid/status")"
    sleep 30
  done
  last=$(awk '/VmRSS/ { print $2 }' "/proc/$main_pid/status")
  cat "$work/soak.out"
  awk -v a="$first" -v b="$last" 'BEGIN { printf "soak: RSS after 1 min %.1f MiB, at the end %.1f MiB: %+.1f%% (target < 10%%)\n", a / 1024, b / 1024, (b - a) * 100 / a }'
  exit 0
fi

for row in "${rows[@]}"; do run_row "$row" "$work/warmup"; done
for round in $(seq "$ROUNDS"); do
  for row in "${rows[@]}"; do run_row "$row" "$work/$row.$round"; done
done

HZ=$(getconf CLK_TCK)
cpu_us() { # cpu_us FILE: proxy CPU µs per request served in that run
  local ticks; ticks=$(cat "$1.cpu")
  if [ "$ticks" = - ]; then echo -; return; fi
  awk -v t="$ticks" -v n="$(requests "$1")" -v hz="$HZ" 'BEGIN { printf "%.1f\n", t * 1e6 / hz / n }'
}
errs() { for round in $(seq "$ROUNDS"); do errors "$work/$1.$round"; done | awk '{ n += $1 } END { print n + 0 }'; }
wrapped() { grep -l WRAPPED "$work/$1".* >/dev/null 2>&1 && echo " (token list wrapped: partly cached)" || true; }

peak_rss=$(awk '/VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$main_pid/status")
declare -A R C
for row in "${rows[@]}"; do
  R[$row]=$(col rps "$row")
  if [ "$row" = direct ]; then C[$row]=-; else C[$row]=$(col cpu_us "$row"); fi   # wrk's own target: no proxy
done

mkdir -p target/load
{
  printf '\nLoad harness, %s: %s rounds x %s s, medians; %s connections, wrk -t1; proxies single-threaded; %s cores (%s)\n' \
    "$(date -u +%Y-%m-%d)" "$ROUNDS" "$DURATION" "$CONNS" "$(nproc)" "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  printf '%-28s %11s %8s %8s %11s %9s %9s %9s %9s %7s\n' row requests/s "p50 ms" "p99 ms" "cpu us/req" "rps/nginx" "rps/open" "cpu/nginx" "cpu/open" errors
  for row in "${rows[@]}"; do
    printf '%-28s %11s %8s %8s %11s %9s %9s %9s %9s %7s%s\n' "$row" "${R[$row]}" "$(col p50 "$row")" "$(col p99 "$row")" "${C[$row]}" \
      "$(ratio "${R[$row]}" "${R[nginx]}")" "$(ratio "${R[$row]}" "${R[portcullis-open]}")" \
      "$(ratio "${C[$row]}" "${C[nginx]}")" "$(ratio "${C[$row]}" "${C[portcullis-open]}")" "$(errs "$row")" "$(wrapped "$row")"
  done
  printf 'gateway RSS: idle after start %s MiB (target < 32), peak under load %s MiB (target < 64)\n' "$idle_rss" "$peak_rss"
} | tee target/load/results.txt

{
  printf '{"date": "%s", "duration_s": %s, "rounds": %s, "connections": %s, "cores": %s, "idle_rss_mib": %s, "peak_rss_mib": %s, "rows": [' \
    "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$DURATION" "$ROUNDS" "$CONNS" "$(nproc)" "$idle_rss" "$peak_rss"
  sep=""
  for row in "${rows[@]}"; do
    c=${C[$row]}; [ "$c" = - ] && c=null
    printf '%s{"row": "%s", "rps": %s, "p50_ms": %s, "p99_ms": %s, "cpu_us_per_request": %s, "errors": %s}' \
      "$sep" "$row" "${R[$row]}" "$(col p50 "$row")" "$(col p99 "$row")" "$c" "$(errs "$row")"
    sep=", "
  done
  printf ']}\n'
} > target/load/results.json
echo "written: target/load/results.json"
