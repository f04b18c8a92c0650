#!/usr/bin/env bash
# The chaos soak: a Redis, three silos (the third reaches Redis through a TCP fault proxy) and client
# processes spending a fixed window, a token bucket, reservations settled with refunds and overruns,
# fair-queue waiters of three tenants and provider reports, while a seeded schedule injects faults one
# after another. The checker then compares every client's record of what it was told with Redis's
# ledger (docs/faults.md, "The chaos soak") and exits non-zero on any over-grant or on lost permits
# beyond the stated bound. The same seed replays the same schedule.
#   --minutes M   minutes of faults (default 3)
#   --seed S      the schedule's seed (default: from the clock, printed)
#   --dir D       where the records, events, ledger and logs go (default: a new directory under /tmp)
#   --no-build    use what is built
set -uo pipefail
cd "$(dirname "$0")/.."

args=() build=yes
while [ $# -gt 0 ]; do
  case $1 in
    --minutes|--seed|--dir|--clients) [ $# -ge 2 ] || { echo "soak.sh: $1 needs a value" >&2; exit 2; }; args+=("$1" "$2"); shift ;;
    --no-build) build=no ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "soak.sh: unknown option '$1' (--minutes M, --seed S, --dir D, --no-build)" >&2; exit 2 ;;
  esac
  shift
done

command -v redis-server >/dev/null 2>&1 || { echo "soak.sh: redis-server is missing (apt-get install redis-server)" >&2; exit 2; }
if [ "$build" = yes ]; then
  dotnet build bench/OrleansLimiter.Soak/OrleansLimiter.Soak.csproj -c Release -nologo -v q >/dev/null || { echo "soak.sh: the build failed" >&2; exit 2; }
fi
exec dotnet bench/OrleansLimiter.Soak/bin/Release/net10.0/OrleansLimiter.Soak.dll "${args[@]}"
