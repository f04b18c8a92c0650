#!/usr/bin/env bash
# The main job: a private Redis, two silos and three worker processes sharing one small demo quota
# (300 points per 10 s). Shows live that the workers together never exceed it, then checks every
# window's total. Works against an existing Redis when REDIS_URL is set. Ctrl-C stops everything.
#
#   DEMO_SECONDS (default 25)  DEMO_POINTS (300)  DEMO_WINDOW (10)  DEMO_WORKERS (3)  DEMO_CALLERS (8 per worker)
set -uo pipefail
cd "$(dirname "$0")/.."

SECONDS_TO_RUN=${DEMO_SECONDS:-25}
POINTS=${DEMO_POINTS:-300}
WINDOW=${DEMO_WINDOW:-10}
WORKERS=${DEMO_WORKERS:-3}
CALLERS=${DEMO_CALLERS:-8}
RUN_DIR=$(mktemp -d -t orleanslimiter-demo-XXXX)
PIDS=()
REDIS_PID=""

say() { printf '\033[1m[demo]\033[0m %s\n' "$*"; }

cleanup() {
  trap - EXIT INT TERM
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  sleep 0.5
  for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null; done
  [ -n "$REDIS_PID" ] && kill "$REDIS_PID" 2>/dev/null
  wait 2>/dev/null
  say "stopped everything it started (logs in $RUN_DIR)"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { # a free loopback port, starting at $1
  local p=$1
  while (exec 3<>/dev/tcp/127.0.0.1/"$p") 2>/dev/null; do p=$((p + 1)); done
  echo "$p"
}

if ! command -v redis-server >/dev/null 2>&1; then
  say "installing redis-server from Debian's packages"
  if [ "$(id -u)" = 0 ]; then apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  else sudo apt-get update -qq >/dev/null && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; fi
fi

say "building (Release)"
dotnet build OrleansLimiter.sln -c Release -nologo -v q >/dev/null || { say "build failed"; exit 1; }
SILO=src/Silo/bin/Release/net10.0/OrleansLimiter.Silo.dll
WORKER=src/Worker/bin/Release/net10.0/OrleansLimiter.Worker.dll

if [ -n "${REDIS_URL:-}" ]; then
  say "using the Redis in REDIS_URL"
  CLI_REDIS=(-u "$REDIS_URL")
else
  RPORT=$(free_port 6380)
  redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no --logfile "$RUN_DIR/redis.log" &
  REDIS_PID=$!
  export REDIS_URL="redis://127.0.0.1:$RPORT"
  CLI_REDIS=(-h 127.0.0.1 -p "$RPORT")
  for _ in $(seq 50); do redis-cli "${CLI_REDIS[@]}" ping >/dev/null 2>&1 && break; sleep 0.1; done
  say "private Redis on 127.0.0.1:$RPORT"
fi

CLUSTER="demo-$RANDOM$RANDOM"
export Orleans__ClusterId=$CLUSTER Orleans__ServiceId=$CLUSTER
export RateLimiting__Providers__demo__Points=$POINTS RateLimiting__Providers__demo__Duration=$WINDOW
KEY="ratelimit:demo:global"
redis-cli "${CLI_REDIS[@]}" del "$KEY" >/dev/null

HTTP1=$(free_port 3000)
for i in 1 2; do
  http=$(free_port $((HTTP1 + i - 1))); silo=$(free_port $((11110 + i))); gw=$(free_port $((29999 + i)))
  ASPNETCORE_URLS="http://127.0.0.1:$http" Orleans__SiloPort=$silo Orleans__GatewayPort=$gw Logging__LogLevel__Default=Warning \
    dotnet "$SILO" >"$RUN_DIR/silo$i.log" 2>&1 &
  PIDS+=($!)
  eval "HTTP_SILO$i=$http"
done
say "two silos starting (cluster $CLUSTER)…"
for i in 1 2; do
  port_var="HTTP_SILO$i"; port=${!port_var}
  for _ in $(seq 120); do curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break; sleep 0.5; done
  curl -fs "http://127.0.0.1:$port/health" >/dev/null || { say "silo $i did not start:"; tail -20 "$RUN_DIR/silo$i.log"; exit 1; }
done
say "silos up:  health http://127.0.0.1:$HTTP_SILO1/health   dashboard http://127.0.0.1:$HTTP_SILO1/dashboard/"
say "quota: $POINTS points per $WINDOW s for provider 'demo' (key $KEY), shared by $WORKERS workers x $CALLERS callers"

for i in $(seq "$WORKERS"); do
  Worker__Name="worker$i" Worker__Provider=demo Worker__Callers=$CALLERS Worker__WorkMilliseconds=20 Worker__Duration=$SECONDS_TO_RUN \
    dotnet "$WORKER" 2>&1 | tee "$RUN_DIR/worker$i.log" | grep --line-buffered -vE '^(WINDOW|SUMMARY) ' &
  PIDS+=($!)
done

# The authoritative total, straight from the Redis hash, every 2 seconds while the workers run.
end=$((SECONDS + SECONDS_TO_RUN + 15))
while [ $SECONDS -lt $end ]; do
  sleep 2
  running=0
  for i in $(seq "$WORKERS"); do grep -q '^\[worker'"$i"'\] done' "$RUN_DIR/worker$i.log" 2>/dev/null || running=1; done
  left=$(redis-cli "${CLI_REDIS[@]}" hget "$KEY" points 2>/dev/null)
  pttl=$(redis-cli "${CLI_REDIS[@]}" pttl "$KEY" 2>/dev/null)
  if [ -n "$left" ]; then
    printf '\033[1m[total]\033[0m window: %s of %s points used, %s left, refills in %s.%s s\n' "$((POINTS - left))" "$POINTS" "$left" "$((pttl / 1000))" "$(((pttl % 1000) / 100))"
  fi
  [ $running = 0 ] && break
done

echo
say "per window (sum of what each worker was granted, by the window end Redis reported):"
grep -h '^WINDOW ' "$RUN_DIR"/worker*.log | sort -k3,3n | awk -v points="$POINTS" '
  function flush() {
    if (cur == "") return
    cmd = "date -u -d @" int(cur / 1000) " +%H:%M:%S"; cmd | getline t; close(cmd)
    flag = (total <= points) ? "ok" : "EXCEEDED"
    if (total > points) bad = 1
    printf "  window ending %s UTC:%s  total %d / %d  %s\n", t, part, total, points, flag
    n++
  }
  $3 != cur { flush(); cur = $3; total = 0; part = "" }
  { total += $4; part = part sprintf(" %s=%d", $2, $4) }
  END { flush(); if (n == 0) { print "  no grants recorded"; exit 2 } exit bad }'
verdict=$?
echo
say "health of silo 1:"
curl -s "http://127.0.0.1:$HTTP_SILO1/health"; echo
if [ $verdict = 0 ]; then
  say "RESULT: the $WORKERS workers together never exceeded $POINTS points per $WINDOW s window"
else
  say "RESULT: a window was exceeded or nothing was granted (see above)"
fi
exit $verdict
