#!/usr/bin/env bash
# The gateway under load from the official Node SDKs: three Node processes (8 concurrent calls each,
# one of them streaming) through two gateways (the HTTP ports of two silos) against the provider
# simulator, then the same three straight at the simulator, side by side; first with the openai SDK
# (500 RPM / 60,000 TPM), then with @anthropic-ai/sdk (separate input- and output-token limits).
# Needs a Release build (dotnet build OrleansLimiter.sln -c Release) and redis-server.
#   scripts/gateway-load.sh [seconds]      (60 by default; LOAD_APIS="openai anthropic")
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN=${1:-60}
APIS=${LOAD_APIS:-openai anthropic}
RPM=500 TPM=60000 ITPM=40000 OTPM=8000
BIN=bin/Release/net10.0
SILO=src/Silo/$BIN/OrleansLimiter.Silo.dll
SIMULATOR=tools/ProviderSimulator/$BIN/OrleansLimiter.ProviderSimulator.dll
CLI=src/Cli/$BIN/OrleansLimiter.Cli.dll
for f in "$SILO" "$SIMULATOR" "$CLI"; do [ -f "$f" ] || { echo "missing $f: run dotnet build OrleansLimiter.sln -c Release" >&2; exit 1; }; done
[ -d tests/node/node_modules/openai ] || (cd tests/node && npm ci --no-audit --no-fund --loglevel=error >/dev/null)

say() { printf '\033[1m[load]\033[0m %s\n' "$*"; }
RUN_DIR=$(mktemp -d /tmp/gateway-load.XXXXXX)
PIDS=()
# Each process in a group of its own, so that stopping it stops what it started.
spawn() { setsid "$@" & PIDS+=($!); }
cleanup() { for pid in "${PIDS[@]}"; do kill -9 -- "-$pid" 2>/dev/null || true; done; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_http() { for _ in $(seq 1 600); do curl -fs -o /dev/null "$1" && return 0; sleep 0.2; done; echo "no answer from $1" >&2; exit 1; }

REDIS_PORT=$(free_port)
spawn redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no >"$RUN_DIR/redis.log" 2>&1
SIM_PORT=$(free_port)
SIM_URL=http://127.0.0.1:$SIM_PORT
spawn dotnet "$SIMULATOR" --urls "$SIM_URL" --Simulator:RequestsPerMinute=$RPM --Simulator:TokensPerMinute=$TPM \
  --Simulator:InputTokensPerMinute=$ITPM --Simulator:OutputTokensPerMinute=$OTPM --Simulator:RequireApiKey=true \
  --Logging:LogLevel:Default=Warning >"$RUN_DIR/simulator.log" 2>&1

CLUSTER=load-$RANDOM$RANDOM
export REDIS_URL=redis://127.0.0.1:$REDIS_PORT Orleans__ClusterId=$CLUSTER Orleans__ServiceId=$CLUSTER DOTNET_gcServer=0
export Logging__LogLevel__Default=Warning
# The limiter holds the provider's own limits, counted the way the provider counts them (buckets
# refilling continuously); the gateway forwards to the simulator with the "real" keys.
export RateLimiting__Providers__openai__Points=$RPM RateLimiting__Providers__openai__Duration=60 RateLimiting__Providers__openai__Algorithm=TokenBucket
export RateLimiting__Providers__openai__Limits__tokens__Points=$TPM RateLimiting__Providers__openai__Limits__tokens__Duration=60 RateLimiting__Providers__openai__Limits__tokens__Algorithm=TokenBucket
export RateLimiting__Providers__anthropic__Points=$RPM RateLimiting__Providers__anthropic__Duration=60 RateLimiting__Providers__anthropic__Algorithm=TokenBucket
# Limit names with a hyphen cannot be environment variables in a shell: they go on the command line.
ANTHROPIC_LIMITS=()
for l in input-tokens:$ITPM output-tokens:$OTPM; do
  ANTHROPIC_LIMITS+=("--RateLimiting:Providers:anthropic:Limits:${l%%:*}:Points=${l#*:}" "--RateLimiting:Providers:anthropic:Limits:${l%%:*}:Duration=60" "--RateLimiting:Providers:anthropic:Limits:${l%%:*}:Algorithm=TokenBucket")
done
export Gateway__Providers__openai__Upstream=$SIM_URL Gateway__Providers__openai__Api=OpenAI Gateway__Providers__openai__ApiKey=sk-sim-openai
export Gateway__Providers__anthropic__Upstream=$SIM_URL Gateway__Providers__anthropic__Api=Anthropic Gateway__Providers__anthropic__ApiKey=sk-sim-anthropic

GATEWAYS=()
for i in 1 2; do
  http=$(free_port)
  ASPNETCORE_URLS=http://127.0.0.1:$http Orleans__SiloPort=$(free_port) Orleans__GatewayPort=$(free_port) \
    spawn dotnet "$SILO" "${ANTHROPIC_LIMITS[@]}" >"$RUN_DIR/silo$i.log" 2>&1
  GATEWAYS+=("http://127.0.0.1:$http")
done
wait_http "$SIM_URL/stats"
for g in "${GATEWAYS[@]}"; do wait_http "$g/health"; done
KEY=$(dotnet "$CLI" keys create --tenant load --timeout 60 2>/dev/null | tail -n1)
for g in "${GATEWAYS[@]}"; do
  for _ in $(seq 1 100); do
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $KEY" "$g/v1/limits")
    [ "$code" = 200 ] && break; sleep 0.2
  done
done
say "simulator $SIM_URL; gateways ${GATEWAYS[*]}; $SECONDS_PER_RUN s per run; logs in $RUN_DIR"

# One run: three workers, each through the given base URL; prints "429s served prompt completion minutes".
run() {
  local sdk=$1 label=$2; shift 2
  local urls=("$@")
  curl -fs -X POST "$SIM_URL/stats/reset?fill=true" >/dev/null
  local outs=()
  for w in 0 1 2; do
    node tests/node/load/worker.mjs "$sdk" "${urls[$w]}" "$KEY" "$SECONDS_PER_RUN" 8 30 >"$RUN_DIR/$label-$w.json" 2>"$RUN_DIR/$label-$w.err" &
    outs+=($!)
  done
  wait "${outs[@]}"
  curl -fs "$SIM_URL/stats" >"$RUN_DIR/$label-stats.json"
  node -e '
    const s = require(process.argv[1])[process.argv[2]];
    const w = [0, 1, 2].map((i) => require(process.argv[3] + "-" + i + ".json"));
    // From the first call of any worker to the last answer: Node starting up is not capacity offered.
    const minutes = (Math.max(...w.map((x) => x.endedAt)) - Math.min(...w.map((x) => x.firstCallAt))) / 60000;
    console.log([s.refusedTotal, s.served, s.promptTokens, s.completionTokens, minutes.toFixed(3),
      w.reduce((a, x) => a + x.streamed, 0), w.reduce((a, x) => a + x.errors, 0)].join(" "));
  ' "$RUN_DIR/$label-stats.json" "$sdk" "$RUN_DIR/$label"
}

for api in $APIS; do
  if [ "$api" = openai ]; then
    with=$(run openai openai-gw "${GATEWAYS[0]}/openai/v1" "${GATEWAYS[1]}/openai/v1" "${GATEWAYS[0]}/openai/v1")
    without=$(run openai openai-direct "$SIM_URL/v1" "$SIM_URL/v1" "$SIM_URL/v1")
  else
    with=$(run anthropic anthropic-gw "${GATEWAYS[0]}/anthropic" "${GATEWAYS[1]}/anthropic" "${GATEWAYS[0]}/anthropic")
    without=$(run anthropic anthropic-direct "$SIM_URL" "$SIM_URL" "$SIM_URL")
  fi
  say "$api SDK, 3 processes x 8 concurrent calls (1 streaming), $SECONDS_PER_RUN s; capacity = a full bucket plus its refill from the first call to the last answer:"
  printf '  %-16s %9s %9s %10s %12s %12s %9s %9s\n' "" "429s" "answered" "streamed" "input tok" "output tok" "% cap" "errors"
  for pair in "through gateway|$with" "straight|$without"; do
    label=${pair%%|*}; read -r r429 served prompt completion minutes streamed errors <<<"${pair#*|}"
    if [ "$api" = openai ]; then
      pct=$(awk -v t=$((prompt + completion)) -v c=$TPM -v m="$minutes" 'BEGIN { printf "%.1f%% tok", 100 * t / (c + c * m) }')
    else
      pct=$(awk -v i="$prompt" -v o="$completion" -v ci=$ITPM -v co=$OTPM -v m="$minutes" 'BEGIN { printf "%.1f%% in, %.1f%% out", 100 * i / (ci + ci * m), 100 * o / (co + co * m) }')
    fi
    printf '  %-16s %9d %9d %10d %12d %12d %s %9d\n' "$label" "$r429" "$served" "$streamed" "$prompt" "$completion" "$pct" "$errors"
  done
done
