#!/usr/bin/env bash
# The main job: a private Redis, two silos and three worker processes sharing one small demo quota
# (300 points per 10 s), with 4, 8 and 32 callers. Shows live that the workers together never exceed
# it, then checks every window's total and that each worker (a tenant of its own, waiting in the
# grain's fair queue) got its share of every whole window whatever its number of callers. Then the chat part: the provider simulator with an OpenAI-style RPM/TPM quota, three
# chat workers calling it through the official OpenAI client, first without the limiter, then with it,
# and the 429s and tokens of both runs side by side. Works against an existing Redis when REDIS_URL is
# set. Ctrl-C stops everything.
#
#   DEMO_MODE (all; quota, chat or gateway for one part)
#   DEMO_GATEWAY_SECONDS (20: each run of the gateway part, Node workers with the official openai SDK)
#   DEMO_SECONDS (default 35)  DEMO_POINTS (300)  DEMO_WINDOW (10)  DEMO_WORKERS (3)
#   DEMO_CALLERS ("4 8 32": callers of worker 1, 2, 3, …; the last number for the workers beyond)
#   DEMO_CHAT_SECONDS (20 per run)  DEMO_CHAT_TPM (30000)  DEMO_CHAT_RPM (300)  DEMO_CHAT_CALLERS (8 per worker)
#   DEMO_CHAT_OTHER_TENANT (0: the share of the simulator's quota another tenant spends, e.g. 0.3)
#   DEMO_SCREENSHOT (unset; a .png path: a picture of the console at the end of the chat part, taken
#   with headless Chromium by tests/browser/console.mjs, whose packages `npm ci` installs there)
set -uo pipefail
cd "$(dirname "$0")/.."

SECONDS_TO_RUN=${DEMO_SECONDS:-35}
POINTS=${DEMO_POINTS:-300}
WINDOW=${DEMO_WINDOW:-10}
WORKERS=${DEMO_WORKERS:-3}
read -r -a CALLERS <<<"${DEMO_CALLERS:-4 8 32}"
for c in "${CALLERS[@]}"; do
  case "$c" in ''|*[!0-9]*|0) echo "DEMO_CALLERS must be whole numbers of callers above 0, e.g. \"4 8 32\" (was '${DEMO_CALLERS:-}')" >&2; exit 2;; esac
done
callers_of() { local i=$1; [ "$i" -gt "${#CALLERS[@]}" ] && i=${#CALLERS[@]}; echo "${CALLERS[$((i - 1))]}"; }
MODE=${DEMO_MODE:-all}
CHAT_SECONDS=${DEMO_CHAT_SECONDS:-20}
CHAT_TPM=${DEMO_CHAT_TPM:-30000}
CHAT_RPM=${DEMO_CHAT_RPM:-300}
CHAT_CALLERS=${DEMO_CHAT_CALLERS:-8}
CHAT_OTHER=${DEMO_CHAT_OTHER_TENANT:-0}
case "$MODE" in all|quota|chat|gateway) ;; *) echo "DEMO_MODE must be all, quota, chat or gateway (was '$MODE')" >&2; exit 2;; esac
RUN_DIR=$(mktemp -d -t orleanslimiter-demo-XXXX)
PIDS=()
REDIS_PID=""

say() { printf '\033[1m[demo]\033[0m %s\n' "$*"; }

# Each process (or pipeline) started in a process group of its own, so that stopping the group stops
# everything in it: the dotnet process behind a pipeline too.
spawn() { setsid "$@" & PIDS+=($!); }

cleanup() {
  trap - EXIT INT TERM
  for pid in "${PIDS[@]}"; do kill -- -"$pid" 2>/dev/null; done
  sleep 0.5
  for pid in "${PIDS[@]}"; do kill -9 -- -"$pid" 2>/dev/null; done
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
dotnet build OrleansLimiter.sln -c Release -nologo -v q >"$RUN_DIR/build.log" 2>&1 \
  || { say "build failed:"; grep -E ' error ' "$RUN_DIR/build.log" | sort -u | head -20; exit 1; }
SILO=src/Silo/bin/Release/net10.0/OrleansLimiter.Silo.dll
WORKER=src/Worker/bin/Release/net10.0/OrleansLimiter.Worker.dll
CLI=src/Cli/bin/Release/net10.0/OrleansLimiter.Cli.dll
SIMULATOR=tools/ProviderSimulator/bin/Release/net10.0/OrleansLimiter.ProviderSimulator.dll

# The private Redis and the two silos of the quota and chat parts (the gateway part starts its own).
start_cluster() {
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
  # Garbage collection for tail latency on small machines: workstation GC with a 256 MB gen0 budget
  # (a collection every few seconds at most, each short) instead of server GC. Side by side on the
  # 2-core machine: fair-queue windows whose first grant came over 20 ms, 12 of 680 with server GC,
  # 0 of 312 with this; throughput not lower (docs/performance.md). Set either variable to override.
  export DOTNET_gcServer="${DOTNET_gcServer:-0}" DOTNET_GCgen0size="${DOTNET_GCgen0size:-0x10000000}"
  export Orleans__ClusterId=$CLUSTER Orleans__ServiceId=$CLUSTER
  export RateLimiting__Providers__demo__Points=$POINTS RateLimiting__Providers__demo__Duration=$WINDOW
  # The chat part's limits, the simulator's own: requests and tokens per minute, refilling continuously.
  export RateLimiting__Providers__openai__Points=$CHAT_RPM RateLimiting__Providers__openai__Duration=60 RateLimiting__Providers__openai__Algorithm=TokenBucket
  export RateLimiting__Providers__openai__Limits__tokens__Points=$CHAT_TPM RateLimiting__Providers__openai__Limits__tokens__Duration=60 RateLimiting__Providers__openai__Limits__tokens__Algorithm=TokenBucket
  KEY="ratelimit:demo:global"
  redis-cli "${CLI_REDIS[@]}" del "$KEY" >/dev/null

  HTTP1=$(free_port 3000)
  for i in 1 2; do
    http=$(free_port $((HTTP1 + i - 1))); silo=$(free_port $((11110 + i))); gw=$(free_port $((29999 + i)))
    ASPNETCORE_URLS="http://127.0.0.1:$http" Orleans__SiloPort=$silo Orleans__GatewayPort=$gw Logging__LogLevel__Default=Warning \
      spawn dotnet "$SILO" >"$RUN_DIR/silo$i.log" 2>&1
    eval "HTTP_SILO$i=$http"
  done
  say "two silos starting (cluster $CLUSTER)…"
  for i in 1 2; do
    port_var="HTTP_SILO$i"; port=${!port_var}
    for _ in $(seq 120); do curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break; sleep 0.5; done
    curl -fs "http://127.0.0.1:$port/health" >/dev/null || { say "silo $i did not start:"; tail -20 "$RUN_DIR/silo$i.log"; exit 1; }
  done
  say "silos up:  health http://127.0.0.1:$HTTP_SILO1/health   console http://127.0.0.1:$HTTP_SILO1/console   dashboard http://127.0.0.1:$HTTP_SILO1/dashboard/"
  # The console samples from its first look and keeps 15 minutes: look now, so that it holds the whole run.
  curl -fs "http://127.0.0.1:$HTTP_SILO1/console/api/state" >/dev/null 2>&1 || true
}

# A picture of the console (DEMO_SCREENSHOT): its charts as they stand, after 3 s more of them.
screenshot() {
  [ -n "${DEMO_SCREENSHOT:-}" ] || return 0
  if [ ! -d tests/browser/node_modules ] || ! command -v "${CHROMIUM_PATH:-chromium}" >/dev/null 2>&1; then
    say "no screenshot: it needs chromium and tests/browser's packages (cd tests/browser && npm ci)"
    return 0
  fi
  node tests/browser/console.mjs "http://127.0.0.1:$HTTP_SILO1" "" - 3 "$DEMO_SCREENSHOT" >"$RUN_DIR/screenshot.log" 2>&1 \
    && say "console screenshot saved to $DEMO_SCREENSHOT" || say "the screenshot failed (see $RUN_DIR/screenshot.log)"
}

quota_demo() {
  local counts="" names=""
  for i in $(seq "$WORKERS"); do counts="$counts${counts:+, }$(callers_of "$i")"; names="$names worker$i"; done
  say "quota: $POINTS points per $WINDOW s for provider 'demo' (key $KEY), shared by $WORKERS workers with $counts callers"
  for i in $(seq "$WORKERS"); do
    Worker__Name="worker$i" Worker__Provider=demo Worker__Callers=$(callers_of "$i") Worker__WorkMilliseconds=20 Worker__Duration=$SECONDS_TO_RUN \
      spawn bash -c 'dotnet "$0" 2>&1 | tee "$1" | grep --line-buffered -vE "^(WINDOW|SUMMARY) "' "$WORKER" "$RUN_DIR/worker$i.log"
  done

  # The authoritative total, straight from the Redis hash, every 2 seconds while the workers run.
  local end=$((SECONDS + SECONDS_TO_RUN + 15)) running left pttl
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
  # Fair shares: each worker is a tenant of its own (its process), weight 1, so each should get a
  # third of every window (with 3 workers) whatever its number of callers: 28% to 39% is the issue's
  # bound, scaled to other numbers of workers. A window is held to it when every worker was already
  # waiting when it opened (each was granted in the window before), and it is not the last (the run
  # stops in it); the others are partial (workers still starting, or stopping).
  say "per window (what each worker was granted, by the window end Redis reported; share of the window's $POINTS points):"
  grep -h '^WINDOW ' "$RUN_DIR"/worker*.log | sort -k3,3n | awk -v points="$POINTS" -v names="$names" '
    { if (!($3 in seen)) { seen[$3] = 1; ends[++n] = $3 } got[$3, $2] += $4; total[$3] += $4 }
    END {
      if (n == 0) { print "  no grants recorded"; exit 2 }
      k = split(names, w, " "); lo = 0.84 * 100 / k; hi = 1.17 * 100 / k
      for (i = 1; i <= n; i++) {
        e = ends[i]; cmd = "date -u -d @" int(e / 1000) " +%H:%M:%S"; cmd | getline t; close(cmd)
        whole = (i > 1 && i < n); line = ""; flag = "ok"
        for (j = 1; j <= k && whole; j++) { if (!((ends[i - 1], w[j]) in got)) { whole = 0 } }
        if (total[e] > points) { flag = "EXCEEDED"; bad = 1 }
        for (j = 1; j <= k; j++) {
          share = 100 * got[e, w[j]] / points
          line = line sprintf(" %s=%d (%.1f%%)", w[j], got[e, w[j]], share)
          if (whole && (share < lo || share > hi)) { flag = flag " UNFAIR"; bad = 1 }
        }
        if (whole) { wholes++ } else { line = line "  (partial: not held to the shares)" }
        printf "  window ending %s UTC:%s  total %d / %d  %s\n", t, line, total[e], points, flag
      }
      printf "  shares held to %.0f%% .. %.0f%% in %d whole window(s)\n", lo, hi, wholes
      if (wholes == 0) { print "  no whole window: run longer (DEMO_SECONDS)"; exit 2 }
      exit bad
    }'
  local verdict=$?
  echo
  say "health of silo 1:"
  curl -s "http://127.0.0.1:$HTTP_SILO1/health"; echo
  if [ $verdict = 0 ]; then
    say "RESULT: the $WORKERS workers together never exceeded $POINTS points per $WINDOW s window, and each got its share of every whole window"
  else
    say "RESULT: a window was exceeded, a share was off, or nothing was granted (see above)"
  fi
  return $verdict
}

# One number from the simulator's /stats for the OpenAI-style endpoint, e.g. stat promptTokens.
stat() { curl -s "$SIM_URL/stats" | sed 's/.*"openai":\(.*\),"anthropic".*/\1/' | grep -o "\"$1\":[0-9]*" | head -1 | cut -d: -f2; }

# One chat run of $WORKERS workers with Worker:Limiter=$1, against a refilled simulator. Sets RUN_429,
# RUN_TOKENS, RUN_OFFERED (the simulator's capacity plus its refill from the first call to the last
# worker's end), RUN_MINUTES, RUN_OK.
chat_run() {
  local limiter=$1 t_first="" t_end now done_count
  curl -s -X POST "$SIM_URL/stats/reset?fill=true" >/dev/null
  # Through the key's grain, so that its view of the last run goes too (a hash deleted behind its back
  # is restored from what the grain saw spent, never refilled).
  dotnet "$CLI" reset openai --key gpt-4o-mini --redis "$REDIS_URL" --cluster-id "$CLUSTER" --service-id "$CLUSTER" >/dev/null ||
    { say "limiter reset failed"; return 1; }
  rm -f "$RUN_DIR"/chat-"$limiter"-*.log "$RUN_DIR"/chat-trace-*.jsonl
  say "chat run, limiter $limiter: $WORKERS workers x $CHAT_CALLERS callers for $CHAT_SECONDS s"
  for i in $(seq "$WORKERS"); do
    # With the limiter, each worker records its calls for the replay that follows (docs/replay.md).
    Worker__Mode=chat Worker__Name="chat$i-$limiter" Worker__Limiter="$limiter" Worker__ProviderFeedback="${CHAT_FEEDBACK:-on}" Worker__Endpoint="$SIM_URL/v1" Worker__Callers=$CHAT_CALLERS \
      Worker__MaxOutputTokens=200 Worker__Duration=$CHAT_SECONDS Worker__TracePath="$RUN_DIR/chat-trace-$i.jsonl" \
      spawn bash -c 'dotnet "$0" 2>&1 | tee "$1" | grep --line-buffered -vE "^CHAT |health at"' "$WORKER" "$RUN_DIR/chat-$limiter-$i.log"
  done

  # The run counts from the first worker's start (the simulator's bucket is full until then, so the
  # start-up wastes nothing) to the last worker's end.
  local deadline=$((SECONDS + CHAT_SECONDS + 60))
  while [ $SECONDS -lt $deadline ]; do
    now=$(date +%s.%N)
    [ -z "$t_first" ] && grep -qs 'callers chatting' "$RUN_DIR"/chat-"$limiter"-*.log && t_first=$now
    done_count=$(cat "$RUN_DIR"/chat-"$limiter"-*.log 2>/dev/null | grep -c '^CHAT ')
    [ "$done_count" -ge "$WORKERS" ] && { t_end=$now; break; }
    sleep 0.2
  done
  [ -n "${t_end:-}" ] && [ -n "$t_first" ] || { say "the chat workers did not finish"; tail -5 "$RUN_DIR"/chat-"$limiter"-*.log; return 1; }

  RUN_ANSWERED=$(grep -h '^CHAT ' "$RUN_DIR"/chat-"$limiter"-*.log | sed 's/.* ok=\([0-9]*\).*/\1/' | awk '{ s += $1 } END { print s + 0 }')
  RUN_429=$(stat refusedTotal)
  RUN_TOKENS=$(( $(stat promptTokens) + $(stat completionTokens) ))
  RUN_OK=$(stat served)
  RUN_MINUTES=$(awk -v a="$t_first" -v b="$t_end" 'BEGIN { printf "%.3f", (b - a) / 60 }')
  RUN_OFFERED=$(awk -v m="$RUN_MINUTES" -v tpm="$CHAT_TPM" 'BEGIN { printf "%d", tpm + tpm * m }')
  local workers_429
  workers_429=$(grep -h '^CHAT ' "$RUN_DIR"/chat-"$limiter"-*.log | sed 's/.*rate_limited=\([0-9]*\).*/\1/' | awk '{ s += $1 } END { print s + 0 }')
  echo
  grep -h '^CHAT ' "$RUN_DIR"/chat-"$limiter"-*.log | sed 's/^/  /'
  local by_limit
  by_limit=$(curl -s "$SIM_URL/stats" | sed 's/.*"openai":\(.*\),"anthropic".*/\1/' | grep -o '"refused":{[^}]*}' | head -1 | sed 's/"refused"://')
  say "limiter $limiter: simulator answered $RUN_OK calls and $RUN_429 429s ${by_limit:-} (workers counted $workers_429)"
}

chat_demo() {
  local sim_port
  sim_port=$(free_port 5080)
  SIM_URL="http://127.0.0.1:$sim_port"
  spawn dotnet "$SIMULATOR" --urls "$SIM_URL" --Simulator:TokensPerMinute="$CHAT_TPM" --Simulator:RequestsPerMinute="$CHAT_RPM" \
    --Simulator:OtherTenantShare="$CHAT_OTHER" --Logging:LogLevel:Default=Warning >"$RUN_DIR/simulator.log" 2>&1
  for _ in $(seq 100); do curl -fs "$SIM_URL/stats" >/dev/null 2>&1 && break; sleep 0.2; done
  curl -fs "$SIM_URL/stats" >/dev/null || { say "the simulator did not start:"; tail -20 "$RUN_DIR/simulator.log"; return 1; }
  echo
  say "provider simulator on $SIM_URL: $CHAT_RPM requests and $CHAT_TPM tokens per minute, refilling continuously;"
  say "the silos limit provider 'openai' to the same numbers (token buckets). Each call asks max_tokens=200."

  chat_run off || return 1
  local off_429=$RUN_429 off_tokens=$RUN_TOKENS off_offered=$RUN_OFFERED off_minutes=$RUN_MINUTES off_ok=$RUN_OK
  echo
  chat_run on || return 1
  screenshot
  local on_429=$RUN_429 on_tokens=$RUN_TOKENS on_offered=$RUN_OFFERED on_minutes=$RUN_MINUTES on_ok=$RUN_OK on_answered=$RUN_ANSWERED

  echo
  say "chat, side by side (from the simulator's /stats; capacity = a full bucket of $CHAT_TPM + its refill over the run):"
  printf '  %-12s %10s %10s %14s %16s %18s %12s\n' "limiter" "answered" "429s" "tokens used" "tokens/min" "capacity offered" "% used"
  for row in "off $off_ok $off_429 $off_tokens $off_offered $off_minutes" "on $on_ok $on_429 $on_tokens $on_offered $on_minutes"; do
    set -- $row
    awk -v l="$1" -v ok="$2" -v r="$3" -v t="$4" -v o="$5" -v m="$6" 'BEGIN { printf "  %-12s %10d %10d %14d %16.0f %18d %11.1f%%\n", l, ok, r, t, t / m, o, 100 * t / o }'
  done
  if [ "$CHAT_OTHER" != 0 ]; then
    # Another tenant spends part of the quota unseen: the limiter learns it from the provider's
    # headers; the first 429s teach it, and the rest of the run must stay under 2% of requests.
    local share
    share=$(awk -v r="$on_429" -v ok="$on_ok" 'BEGIN { n = ok + r; printf "%.2f", (n ? 100 * r / n : 0) }')
    say "another tenant spends $CHAT_OTHER of the quota: with the limiter $on_429 429s of $((on_ok + on_429)) requests ($share%); without it $off_429"
    if awk -v s="$share" 'BEGIN { exit !(s < 2) }' && [ "$off_429" -gt 0 ]; then
      say "RESULT: with another tenant, 429s stayed under 2% of requests with the limiter ($share%), $off_429 without it"
      return 0
    fi
    say "RESULT: unexpected: $share% 429s with the limiter (see $RUN_DIR)"
    return 1
  fi
  replay_chat_run "$on_answered" "$on_429" || return 1
  over_limits_run || return 1
  if [ "$on_429" = 0 ] && [ "$off_429" -gt 0 ]; then
    say "RESULT: without the limiter the three workers got $off_429 429s; with it, none, at $(awk -v t="$on_tokens" -v o="$on_offered" 'BEGIN { printf "%.1f", 100 * t / o }')% of the token capacity"
  else
    say "RESULT: unexpected: $on_429 429s with the limiter, $off_429 without (see $RUN_DIR)"
    return 1
  fi
}

# The limited chat run's calls, as its workers recorded them, replayed by `limiter replay` through the
# same engine on simulated time with the run's limits and the simulator's quotas: the calls it grants
# against those the workers had answered (within 2%), and the provider 429s it predicts against the run's.
replay_chat_run() {
  local answered=$1 live_429=$2 trace="$RUN_DIR/chat-trace.jsonl" config="$RUN_DIR/replay.json" granted predicted
  cat "$RUN_DIR"/chat-trace-*.jsonl > "$trace" 2>/dev/null
  cat > "$config" <<JSON
{ "RateLimiting": { "Providers": { "openai": { "Points": $CHAT_RPM, "Duration": 60, "Algorithm": "TokenBucket",
    "Limits": { "tokens": { "Points": $CHAT_TPM, "Duration": 60, "Algorithm": "TokenBucket" } } } } },
  "Simulator": { "RequestsPerMinute": $CHAT_RPM, "TokensPerMinute": $CHAT_TPM, "OtherTenantShare": $CHAT_OTHER } }
JSON
  echo
  say "replay: the limited run's $(wc -l < "$trace") recorded calls through the same limits on simulated time (limiter replay --trace $trace --config $config)"
  dotnet "$CLI" replay --trace "$trace" --config "$config" > "$RUN_DIR/replay.txt" 2>"$RUN_DIR/replay.err" || { say "the replay failed:"; cat "$RUN_DIR/replay.err"; return 1; }
  sed 's/^/  /' "$RUN_DIR/replay.txt"
  granted=$(awk '$1 ~ /^openai\// { s += $4 } END { print s + 0 }' "$RUN_DIR/replay.txt")
  predicted=$(sed -n 's/^provider 429s the limits let through: \([0-9]*\).*/\1/p' "$RUN_DIR/replay.txt")
  say "replay vs the live run: granted $granted vs $answered answered ($(awk -v g="$granted" -v a="$answered" 'BEGIN { printf "%+.1f", (a ? 100 * (g - a) / a : 0) }')%), provider 429s ${predicted:-?} vs $live_429"
}

# Limits set 20% above the provider's, tried first on the recorded trace (the 429s the replay predicts),
# then live (`limiter limits set` on the running silos, one more limited chat run, `limits clear`).
over_limits_run() {
  local rpm=$((CHAT_RPM * 12 / 10)) tpm=$((CHAT_TPM * 12 / 10)) config="$RUN_DIR/replay-over.json" predicted alone
  local cli=(--redis "$REDIS_URL" --cluster-id "$CLUSTER" --service-id "$CLUSTER")
  sed "s/\"Points\": $CHAT_RPM,/\"Points\": $rpm,/; s/\"Points\": $CHAT_TPM,/\"Points\": $tpm,/" "$RUN_DIR/replay.json" > "$config"
  dotnet "$CLI" replay --trace "$RUN_DIR/chat-trace.jsonl" --config "$config" > "$RUN_DIR/replay-over.txt" 2>"$RUN_DIR/replay-over.err" || { say "the replay failed:"; cat "$RUN_DIR/replay-over.err"; return 1; }
  predicted=$(sed -n 's/^provider 429s the limits let through: \([0-9]*\).*/\1/p' "$RUN_DIR/replay-over.txt")
  # The same limits without the provider's answers taken into the count: what the limits alone let through.
  dotnet "$CLI" replay --trace "$RUN_DIR/chat-trace.jsonl" --config "$config" --no-feedback > "$RUN_DIR/replay-over-alone.txt" 2>/dev/null
  alone=$(sed -n 's/^provider 429s the limits let through: \([0-9]*\).*/\1/p' "$RUN_DIR/replay-over-alone.txt")
  echo
  say "limits 20% above the provider's ($rpm requests, $tpm tokens per minute): the replay of the trace predicts ${predicted:-?} provider 429s (${alone:-?} from the limits alone, without the provider's answers); now live"
  dotnet "$CLI" limits set openai --points "$rpm" --duration 60 "${cli[@]}" >/dev/null &&
    dotnet "$CLI" limits set openai --limit tokens --points "$tpm" --duration 60 "${cli[@]}" >/dev/null || { say "limits set failed"; return 1; }
  chat_run on; local rc=$? live=$RUN_429
  # The same limits live without the provider's answers taken in (Worker:ProviderFeedback=off): the
  # limits alone decide, as in the replay with --no-feedback.
  if [ $rc = 0 ]; then
    echo
    say "the same limits live, the provider's answers not taken in (as the replay's ${alone:-?})"
    CHAT_FEEDBACK=off chat_run on; rc=$?
  fi
  dotnet "$CLI" limits clear openai "${cli[@]}" >/dev/null || say "limits clear failed"
  [ $rc = 0 ] || return 1
  say "limits 20% above the provider's: the replay predicted ${predicted:-?} provider 429s, the live run got $live; the limits alone: replay ${alone:-?}, live $RUN_429"
}

# Any language: three Node processes with the official openai SDK through the gateway (two silos'
# HTTP ports), then straight at the simulator, side by side (scripts/gateway-load.sh).
gateway_demo() {
  local out
  say "gateway: three Node workers with the official openai SDK, through the gateway and then straight at the simulator (${DEMO_GATEWAY_SECONDS:-20} s each)"
  LOAD_APIS=openai bash scripts/gateway-load.sh "${DEMO_GATEWAY_SECONDS:-20}" 2>&1 | tee "$RUN_DIR/gateway-load.log"
  [ "${PIPESTATUS[0]}" = 0 ] || { say "RESULT: the gateway run failed"; return 1; }
  out=$(cat "$RUN_DIR/gateway-load.log")
  local through straight
  through=$(awk '/^  through gateway / { print $3 }' <<<"$out")
  straight=$(awk '/^  straight / { print $2 }' <<<"$out")
  if [ "$through" = 0 ] && [ "${straight:-0}" -gt 0 ]; then
    say "RESULT: through the gateway the Node workers got no 429; straight at the provider, $straight"
  else
    say "RESULT: unexpected: ${through:-?} 429s through the gateway, ${straight:-?} straight"
    return 1
  fi
}

verdict=0
[ "$MODE" = gateway ] || start_cluster
case "$MODE" in
  quota) quota_demo || verdict=1 ;;
  chat) chat_demo || verdict=1 ;;
  gateway) gateway_demo || verdict=1 ;;
  all) quota_demo || verdict=1; chat_demo || verdict=1; gateway_demo || verdict=1 ;;
esac
exit $verdict
