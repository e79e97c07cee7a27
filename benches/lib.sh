# Shared pieces of the load scripts (sourced, not run): tools, a scratch
# directory cleaned up on exit with every started process, free ports, the
# fixed nginx upstream, and wrk output parsing.

bin_dir="${CARGO_TARGET_DIR:-target}/release"
# Optional CPU pinning, as a command prefix ("taskset -c 1"): GATEWAY_PIN for
# the gateway, CLIENT_PIN for nginx (and, in the scripts, the load tools).

ensure_tools() { # ensure_tools [PACKAGE...]: wrk, nginx and PACKAGEs from Debian's packages, the release build
  local need=() p
  command -v wrk >/dev/null || need+=(wrk)
  command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)
  for p in "$@"; do command -v "$p" >/dev/null || [ -x "/usr/sbin/$p" ] || need+=("$p"); done
  if [ ${#need[@]} -gt 0 ]; then
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq && $sudo apt-get install -y -qq "${need[@]}" >/dev/null
  fi
  scripts/ensure-deps.sh
  cargo build --release --quiet --bins --examples
}

work=$(mktemp -d /tmp/portcullis-bench.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

start_upstream() { # start_upstream PORT: nginx, one worker, a small 200 with keep-alive
  mkdir -p "$work/nginx/logs"
  cat > "$work/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
error_log $work/nginx/logs/error.log;
pid $work/nginx/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  server {
    listen 127.0.0.1:$1;
    keepalive_requests 100000;
    location / { return 200 "ok\n"; }
  }
}
CONF
  ${CLIENT_PIN:-} "$(command -v nginx || echo /usr/sbin/nginx)" -p "$work/nginx" -c "$work/nginx/nginx.conf" &
  pids+=($!)
}

start_gateway() { # start_gateway CONFIG ADMIN_PORT: the release binary, until /healthz answers; sets gateway_pid
  RUST_LOG=warn ${GATEWAY_PIN:-} "$bin_dir/portcullis" serve --config "$1" >"$work/gateway.log" 2>&1 &
  pids+=($!)
  gateway_pid=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$2/healthz" >/dev/null && return 0; sleep 0.1; done
  echo "the gateway did not start:" >&2; cat "$work/gateway.log" >&2; return 1
}

# From wrk --latency output: p99 in ms, requests/s, requests, errors.
p99() { awk '$1 == "99%" { v = $2; if (v ~ /us$/) { sub(/us$/, "", v); v /= 1000 } else if (v ~ /ms$/) { sub(/ms$/, "", v) } else if (v ~ /s$/) { sub(/s$/, "", v); v *= 1000 } print v }' "$1"; }
p50() { awk '$1 == "50%" { v = $2; if (v ~ /us$/) { sub(/us$/, "", v); v /= 1000 } else if (v ~ /ms$/) { sub(/ms$/, "", v) } else if (v ~ /s$/) { sub(/s$/, "", v); v *= 1000 } print v }' "$1"; }
rps() { awk '/^Requests\/sec:/ { print $2 }' "$1"; }
requests() { awk '/requests in/ { print $1 }' "$1"; }
errors() { # non-2xx answers plus socket errors (connect, read, write, timeout)
  awk '/Non-2xx/ { n += $NF } /Socket errors/ { gsub(/,/, ""); n += $4 + $6 + $8 + $10 } END { print n + 0 }' "$1"
}
col() { # col FUNCTION SEGMENT: the median of FUNCTION over $work/SEGMENT.1 .. .ROUNDS
  for round in $(seq "$ROUNDS"); do "$1" "$work/$2.$round"; done | median
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2f", a / b }'; }
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

cpu_ticks() { # cpu_ticks PID: utime + stime in clock ticks
  awk '{ print $14 + $15 }' "/proc/$1/stat"
}
