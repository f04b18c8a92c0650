#!/usr/bin/env bash
# The benchmark: direct-Redis baseline, no-op grain ceiling and the limiter side by side in one run.
# Starts its own redis-server and silo(s) unless REDIS_URL is set. Extra arguments go to the driver:
#   --levels 1,16,64,256  --repeats 3  --phase-seconds 1.5  --silos 1  --out FILE  --long
#   --gateway [--gateway-rate 200 --gateway-seconds 15 --gateway-warmup-seconds 20]: only the gateway's added latency (docs/gateway.md)
#   --console [--repeats 5]: only the console's cost, decisions with it closed then open (docs/console.md)
#   --keys N [--key-idle-seconds 30]: only the many-keys run: a key drawn from N per decision, limiter vs
#     direct Redis over N keys, memory per key in the silo and in Redis, keys deactivating when idle
set -euo pipefail
cd "$(dirname "$0")/.."
command -v redis-server >/dev/null 2>&1 || {
  echo "[bench] installing redis-server from Debian's packages"
  if [ "$(id -u)" = 0 ]; then apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  else sudo apt-get update -qq >/dev/null && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; fi
}
# Garbage collection for tail latency on small machines: workstation GC with a 256 MB gen0 budget
# (a collection every few seconds at most, each short) instead of server GC. Side by side on the
# 2-core machine: fair-queue windows whose first grant came over 20 ms, 12 of 680 with server GC,
# 0 of 312 with this; throughput not lower (docs/performance.md). Set either variable to override.
export DOTNET_gcServer="${DOTNET_gcServer:-0}" DOTNET_GCgen0size="${DOTNET_GCgen0size:-0x10000000}"
echo "[bench] building (Release)"
dotnet build OrleansLimiter.sln -c Release -nologo -v q >/dev/null
exec dotnet bench/OrleansLimiter.Bench/bin/Release/net10.0/OrleansLimiter.Bench.dll "$@"
