#!/usr/bin/env bash
# The docker-compose deployment, end to end, as a user would run it:
#   docker compose up --build --scale silo=3 --scale worker=3
# then, while the three workers spend one small shared quota: scale the silos to 5, kill the silo that
# hosts the provider grain, scale down to 1; and check from outside that every window's grants stayed
# within its points (the workers' own counts next to the Redis ledger), that the workers were granted
# again within seconds of each change, and that /admin is closed to the host without the key.
# Then the gateway profile: two gateways in front of two silos, the provider simulator behind them, and
# two Node workers (the official openai SDK) spending one small token quota through them; checks that
# the simulator answered no 429, and that the Redis ledger holds exactly the calls the workers were
# granted and the tokens they reported, plus what the provider's headers took (as the gateways log it).
#
# Installs docker.io / docker-compose from Debian's packages when missing and starts dockerd when no
# engine answers (stopping it again at the end). When the official base images cannot be pulled it
# builds local stand-ins under the same names (Debian bookworm via debootstrap, this machine's .NET,
# Node and CA bundle), cached as images for the next run. Only the base images of the services it starts
# are prepared. Removes its containers, network and volumes at the end.
#
# Exit: 0 passed, 1 failed, 77 skipped (no Docker engine can run here). Last lines: a FAULT summary and
# "compose-e2e: passed|failed|skipped".
#
#   E2E_POINTS (100) and E2E_WINDOW (2 s): the demo quota   E2E_RECOVERY_SECONDS (30): longest allowed
#   pause in grants after a change   E2E_KEEP_DOCKERD=1: leave a dockerd this script started running
#   E2E_GATEWAY=0: leave out the gateway part   E2E_GATEWAY_TOKENS (6000): its token quota
set -uo pipefail
cd "$(dirname "$0")/.."

PROJECT=orleanslimitere2e
POINTS=${E2E_POINTS:-100}
WINDOW=${E2E_WINDOW:-2}
RECOVERY_LIMIT=${E2E_RECOVERY_SECONDS:-30}
GATEWAY_PART=${E2E_GATEWAY:-1}
GATEWAY_TOKENS=${E2E_GATEWAY_TOKENS:-6000}
GATEWAY_REQUESTS=500
PROFILES=()
[ "$GATEWAY_PART" = 1 ] && PROFILES=(gateway)
PROFILE_ARGS=(); for p in "${PROFILES[@]}"; do PROFILE_ARGS+=(--profile "$p"); done
KEY="ratelimit:demo:global"
RUN_DIR=$(mktemp -d -t orleanslimiter-compose-e2e-XXXX)
STARTED_AT=$SECONDS
DOCKERD_PID=""
SAMPLER_PID=""
COMPOSE=()
UP=0
FAILURES=()
FACTS=()

say() { printf '[compose-e2e] %s\n' "$*"; }
fail() { FAILURES+=("$*"); say "FAIL: $*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }
elapsed() { echo $((SECONDS - STARTED_AT)); }

cleanup() {
  local code=$?
  trap - EXIT INT TERM
  [ -n "$SAMPLER_PID" ] && kill "$SAMPLER_PID" 2>/dev/null
  if [ "$UP" = 1 ]; then
    # What the containers said, for a failed run.
    [ ${#FAILURES[@]} -gt 0 ] && "${COMPOSE[@]}" "${PROFILE_ARGS[@]}" logs --no-color --timestamps --tail 300 >"$RUN_DIR/containers.log" 2>&1
    "${COMPOSE[@]}" "${PROFILE_ARGS[@]}" down --volumes --remove-orphans --timeout 5 >>"$RUN_DIR/down.log" 2>&1 || say "compose down failed (see $RUN_DIR/down.log)"
  fi
  if [ -n "$DOCKERD_PID" ] && [ "${E2E_KEEP_DOCKERD:-0}" != 1 ]; then
    kill "$DOCKERD_PID" 2>/dev/null
    for _ in $(seq 60); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$DOCKERD_PID" 2>/dev/null && { say "dockerd did not stop; killing it"; kill -9 "$DOCKERD_PID" 2>/dev/null; }
    say "stopped the dockerd it started"
  fi
  exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

skip() {
  say "$*"
  echo "FAULT compose: skipped, $*"
  echo "compose-e2e: skipped"
  exit 77
}

install_packages() { # Debian packages, quietly; false when apt cannot do it
  say "installing $* from Debian's packages"
  { as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"; } >>"$RUN_DIR/apt.log" 2>&1
}

# ---------------------------------------------------------------------------------------------------
# Tools and the engine.

missing=()
command -v dockerd >/dev/null 2>&1 || docker info >/dev/null 2>&1 || missing+=(docker.io)
docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
command -v jq >/dev/null 2>&1 || missing+=(jq)
command -v curl >/dev/null 2>&1 || missing+=(curl)
if [ ${#missing[@]} -gt 0 ] && ! install_packages "${missing[@]}"; then
  skip "could not install ${missing[*]} (see $RUN_DIR/apt.log)"
fi
command -v docker >/dev/null 2>&1 || skip "no docker client after installing docker.io"

if ! docker info >/dev/null 2>&1; then
  command -v dockerd >/dev/null 2>&1 || skip "no Docker engine answers and dockerd is not installed"
  [ "$(id -u)" = 0 ] || sudo -n true 2>/dev/null || skip "no Docker engine answers and starting dockerd needs root"
  say "no Docker engine answers; starting dockerd (log: $RUN_DIR/dockerd.log)"
  # Started directly (not through a function or subshell) so that $! is dockerd itself, or sudo, which
  # passes the stop signal on.
  if [ "$(id -u)" = 0 ]; then
    dockerd >"$RUN_DIR/dockerd.log" 2>&1 &
  else
    sudo -n dockerd >"$RUN_DIR/dockerd.log" 2>&1 &
  fi
  DOCKERD_PID=$!
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.5; done
  if ! docker info >/dev/null 2>&1; then
    tail -n 5 "$RUN_DIR/dockerd.log" | sed 's/^/  dockerd: /'
    kill "$DOCKERD_PID" 2>/dev/null; DOCKERD_PID=""
    skip "dockerd did not start on this machine"
  fi
fi
say "Docker engine $(docker info --format '{{.ServerVersion}}' 2>/dev/null), storage $(docker info --format '{{.Driver}}' 2>/dev/null) ($(elapsed) s)"

if docker compose version >/dev/null 2>&1; then
  COMPOSE=(docker compose -p "$PROJECT" -f docker-compose.yml)
else
  COMPOSE=(docker-compose -p "$PROJECT" -f docker-compose.yml)
fi
say "compose: ${COMPOSE[*]:0:${#COMPOSE[@]}-4} $("${COMPOSE[@]:0:${#COMPOSE[@]}-4}" version --short 2>/dev/null)"

# ---------------------------------------------------------------------------------------------------
# Base images: the official ones when they can be pulled, otherwise local stand-ins under their names.

DOTNET_ROOT_DIR=""
BASE=orleanslimiter/stand-in-base:bookworm

apt_mirror() { # the Debian archive this machine installs from
  local uri
  uri=$(grep -hsE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print $2}' | grep -v security | head -n1)
  [ -n "$uri" ] || uri=$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | head -n1)
  echo "${uri:-http://deb.debian.org/debian}"
}

build_base() {
  docker image inspect "$BASE" >/dev/null 2>&1 && return 0
  command -v debootstrap >/dev/null 2>&1 || install_packages debootstrap || { fail "could not install debootstrap"; return 1; }
  local root="$RUN_DIR/rootfs" mirror
  mirror=$(apt_mirror)
  say "building $BASE: debootstrap --variant=minbase bookworm from $mirror"
  # dpkg without fsync, as Docker's own debootstrap-based image scripts do: the tree becomes an image.
  as_root mkdir -p "$root/etc/dpkg/dpkg.cfg.d"
  echo force-unsafe-io | as_root tee "$root/etc/dpkg/dpkg.cfg.d/compose-e2e-unsafe-io" >/dev/null
  # The packages of the official .NET runtime-deps image.
  if ! as_root debootstrap --variant=minbase --include=ca-certificates,libicu72,libssl3,tzdata,zlib1g bookworm "$root" "$mirror" >"$RUN_DIR/debootstrap.log" 2>&1; then
    tail -n 5 "$RUN_DIR/debootstrap.log" | sed 's/^/  debootstrap: /'
    fail "debootstrap failed (see $RUN_DIR/debootstrap.log)"; return 1
  fi
  # Trust what this machine trusts: package sources reached through it may present its own CAs.
  as_root cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
  as_root rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root/etc/dpkg/dpkg.cfg.d/compose-e2e-unsafe-io"
  as_root tar -C "$root" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' - "$BASE" >/dev/null || { fail "docker import of the base failed"; return 1; }
  as_root rm -rf "$root"
}

# docker build with a context made of $1 (a directory with the Dockerfile) and, when $3 is given, the
# listed parts of this machine's .NET installation under dotnet/.
build_from_context() {
  local name=$1 ctx=$2; shift 2
  local parent base_name
  if [ $# -gt 0 ]; then
    parent=$(dirname "$DOTNET_ROOT_DIR"); base_name=$(basename "$DOTNET_ROOT_DIR")
    local parts=(); for p in "$@"; do [ -e "$DOTNET_ROOT_DIR/$p" ] && parts+=("$base_name/$p"); done
    tar -c -C "$ctx" . -C "$parent" --transform "s,^$base_name,dotnet," "${parts[@]}"
  else
    tar -c -C "$ctx" .
  fi | DOCKER_BUILDKIT=0 docker build -q -t "$name" - >>"$RUN_DIR/stand-ins.log" 2>&1
}

stand_in_redis() { # $1 = redis:MAJOR
  local major=${1#redis:}; major=${major%%.*}
  build_base || return 1
  local ctx="$RUN_DIR/ctx-redis"; mkdir -p "$ctx"
  # The official image's entrypoint behaviour: options alone mean redis-server; it steps down to the
  # redis user; and protected mode is off unless asked for (the official build turns its default off,
  # Debian's binary keeps it on and would refuse every other container).
  cat >"$ctx/docker-entrypoint.sh" <<'EOF'
#!/bin/sh
set -e
case "$1" in -*|*.conf) set -- redis-server "$@" ;; esac
if [ "$1" = redis-server ] && [ "$(id -u)" = 0 ]; then
  find . \! -user redis -exec chown redis '{}' +
  exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
fi
if [ "$1" = redis-server ]; then
  explicit=
  for arg in "$@"; do [ "$arg" = --protected-mode ] && explicit=1; done
  if [ -f "${2:-}" ] && grep -q '^ *protected-mode' "$2"; then explicit=1; fi
  [ -n "$explicit" ] || set -- "$@" --protected-mode no
fi
[ "$(umask)" = 0022 ] && umask 0077
exec "$@"
EOF
  chmod +x "$ctx/docker-entrypoint.sh"
  cat >"$ctx/Dockerfile" <<EOF
FROM $BASE
RUN groupadd -r -g 999 redis && useradd -r -g redis -u 999 -d /data -M redis \\
 && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null \\
 && rm -rf /var/lib/apt/lists/* && mkdir /data && chown redis:redis /data \\
 && redis-server --version | grep -q ' v=$major\.'
COPY docker-entrypoint.sh /usr/local/bin/
LABEL org.opencontainers.image.description="local stand-in for $1, built by scripts/compose-e2e.sh"
VOLUME /data
WORKDIR /data
EXPOSE 6379
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["redis-server"]
EOF
  build_from_context "$1" "$ctx"
}

stand_in_dotnet() { # $1 = mcr.microsoft.com/dotnet/{aspnet|sdk}:X.Y
  local kind=${1#mcr.microsoft.com/dotnet/}; kind=${kind%%:*}
  local version=${1##*:} runtime sdk
  DOTNET_ROOT_DIR=$(dirname "$(readlink -f "$(command -v dotnet)")")
  runtime=$(ls "$DOTNET_ROOT_DIR/shared/Microsoft.AspNetCore.App" 2>/dev/null | grep "^$version\." | sort -V | tail -n1)
  [ -n "$runtime" ] || { fail "$1 is needed, and this machine's .NET ($DOTNET_ROOT_DIR) has no ASP.NET Core $version runtime to build a stand-in from"; return 1; }
  local ctx="$RUN_DIR/ctx-$kind"; mkdir -p "$ctx"
  if [ "$kind" = aspnet ]; then
    build_base || return 1
    # As the official image: dotnet on PATH, the app user, port 8080 unless ASPNETCORE_URLS says otherwise.
    cat >"$ctx/Dockerfile" <<EOF
FROM $BASE
COPY dotnet /usr/share/dotnet
RUN ln -s /usr/share/dotnet/dotnet /usr/bin/dotnet \\
 && groupadd --gid=1654 app && useradd -l --uid=1654 --gid=1654 --create-home app
ENV APP_UID=1654 ASPNETCORE_HTTP_PORTS=8080 DOTNET_RUNNING_IN_CONTAINER=true DOTNET_VERSION=$runtime ASPNET_VERSION=$runtime
LABEL org.opencontainers.image.description="local stand-in for $1, built by scripts/compose-e2e.sh"
EOF
    build_from_context "$1" "$ctx" dotnet host shared LICENSE.txt ThirdPartyNotices.txt
  else
    sdk=$(ls "$DOTNET_ROOT_DIR/sdk" 2>/dev/null | grep "^$version\." | sort -V | tail -n1)
    [ -n "$sdk" ] || { fail "$1 is needed, and this machine's .NET has no SDK $version.x to build a stand-in from"; return 1; }
    ensure_image "mcr.microsoft.com/dotnet/aspnet:$version" || return 1
    cat >"$ctx/Dockerfile" <<EOF
FROM mcr.microsoft.com/dotnet/aspnet:$version
COPY dotnet /usr/share/dotnet
ENV DOTNET_GENERATE_ASPNET_CERTIFICATE=false DOTNET_NOLOGO=true DOTNET_SDK_VERSION=$sdk DOTNET_USE_POLLING_FILE_WATCHER=true NUGET_XMLDOC_MODE=skip
RUN dotnet --version
LABEL org.opencontainers.image.description="local stand-in for $1, built by scripts/compose-e2e.sh"
EOF
    build_from_context "$1" "$ctx" sdk sdk-manifests packs templates
  fi
}

stand_in_node() { # $1 = node:MAJOR-bookworm-slim
  local major=${1#node:}; major=${major%%-*}
  local node_bin npm_dir have
  node_bin=$(readlink -f "$(command -v node 2>/dev/null)" 2>/dev/null)
  have=$("$node_bin" --version 2>/dev/null)
  [ "${have%%.*}" = "v$major" ] || { fail "$1 is needed, and this machine's Node (${have:-none}) is not Node $major to build a stand-in from"; return 1; }
  npm_dir=$(dirname "$node_bin")/../lib/node_modules/npm
  [ -f "$npm_dir/bin/npm-cli.js" ] || { fail "$1 is needed, and this machine's Node has no npm beside it ($npm_dir)"; return 1; }
  build_base || return 1
  local ctx="$RUN_DIR/ctx-node"; mkdir -p "$ctx/lib"
  cp "$node_bin" "$ctx/node" && cp -r "$(readlink -f "$npm_dir")" "$ctx/lib/npm" || { fail "copying this machine's Node failed"; return 1; }
  # As the official image: node, npm and npx on the PATH, the node user (1000), node as the command.
  cat >"$ctx/Dockerfile" <<EOF
FROM $BASE
COPY node /usr/local/bin/node
COPY lib/npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \\
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \\
 && groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node \\
 && node --version && npm --version
ENV NODE_VERSION=${have#v}
LABEL org.opencontainers.image.description="local stand-in for $1, built by scripts/compose-e2e.sh"
CMD ["node"]
EOF
  build_from_context "$1" "$ctx"
}

ensure_image() {
  local image=$1 started=$SECONDS
  docker image inspect "$image" >/dev/null 2>&1 && return 0
  if timeout 20 docker pull -q "$image" >>"$RUN_DIR/pull.log" 2>&1; then
    say "pulled $image"; return 0
  fi
  say "$image cannot be pulled here; building a local stand-in"
  case "$image" in
    redis:*) stand_in_redis "$image" ;;
    mcr.microsoft.com/dotnet/aspnet:* | mcr.microsoft.com/dotnet/sdk:*) stand_in_dotnet "$image" ;;
    node:*-bookworm-slim) stand_in_node "$image" ;;
    *) fail "$image cannot be pulled and there is no stand-in for it"; return 1 ;;
  esac || { [ ${#FAILURES[@]} -gt 0 ] || fail "building the stand-in for $image failed (see $RUN_DIR/stand-ins.log)"; return 1; }
  docker image inspect "$image" >/dev/null 2>&1 || { fail "building the stand-in for $image failed (see $RUN_DIR/stand-ins.log)"; return 1; }
  say "built stand-in $image in $((SECONDS - started)) s"
}

finish() {
  local verdict=passed code=0
  [ ${#FAILURES[@]} -gt 0 ] && { verdict=failed; code=1; }
  FACTS+=("$(elapsed) s in all")
  [ ${#FAILURES[@]} -gt 0 ] && FACTS=("FAILED: ${FAILURES[0]}" "${FACTS[@]}")
  local line; line=$(printf '%s, ' "${FACTS[@]}")
  echo "FAULT compose: ${line%, }"
  for f in "${FAILURES[@]}"; do say "failed: $f"; done
  say "logs in $RUN_DIR"
  echo "compose-e2e: $verdict"
  exit $code
}

# The base images of the services this run starts: those of their Dockerfile targets (every stage up to
# the target: the classic builder builds them all) and the images they run; services behind a profile
# this run does not start (observability's) are left out. The resolved file is read as YAML with the
# module docker-compose itself depends on.
images=$("${COMPOSE[@]}" config | PROFILES="${PROFILES[*]}" python3 -c '
import os, re, sys, yaml
active = set(os.environ["PROFILES"].split())
images = set()
for service in yaml.safe_load(sys.stdin)["services"].values():
    if service.get("profiles") and not active.intersection(service["profiles"]):
        continue
    build = service.get("build")
    if not build:
        images.add(service["image"])
        continue
    build = {"context": build} if isinstance(build, str) else build
    stages = set()
    with open(os.path.join(build["context"], build.get("dockerfile", "Dockerfile"))) as dockerfile:
        for line in dockerfile:
            m = re.match(r"\s*FROM\s+(\S+)(?:\s+AS\s+(\S+))?", line, re.I)
            if not m:
                continue
            if m.group(1) not in stages:
                images.add(m.group(1))
            if m.group(2):
                stages.add(m.group(2))
                if m.group(2) == build.get("target"):
                    break
print("\n".join(sorted(images)))') || { fail "could not read the images of docker-compose.yml"; finish; }
for image in $images; do
  ensure_image "$image" || finish
done
stand_ins=0
for i in $images; do
  docker image inspect -f '{{index .Config.Labels "org.opencontainers.image.description"}}' "$i" 2>/dev/null | grep -q stand-in && stand_ins=$((stand_ins + 1))
done
IMAGES_FACT="base images: $stand_ins local stand-in(s) of $(echo "$images" | wc -w) (ready after $(elapsed) s)"
say "base images ready ($(elapsed) s)"

# ---------------------------------------------------------------------------------------------------
# The deployment.

export LIMITER_ADMIN_KEY="e2e-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export LIMITER_DEMO_POINTS=$POINTS LIMITER_DEMO_WINDOW=$WINDOW
# Provider openai (the gateway part): fixed windows longer than the run, so that Redis's ledger is the
# run's exact total; the simulator gets the same numbers per minute and so never holds less.
OPENAI_WINDOW=600
export LIMITER_OPENAI_RPM=$GATEWAY_REQUESTS LIMITER_OPENAI_TPM=$GATEWAY_TOKENS LIMITER_OPENAI_WINDOW=$OPENAI_WINDOW LIMITER_OPENAI_ALGORITHM=FixedWindow LIMITER_OPENAI_TOKENS_ALGORITHM=FixedWindow
"${COMPOSE[@]}" "${PROFILE_ARGS[@]}" down --volumes --remove-orphans --timeout 5 >/dev/null 2>&1
UP=1
say "docker compose up --build --scale silo=3 --scale worker=3 (build log: $RUN_DIR/up.log)"
build_started=$SECONDS
if ! "${COMPOSE[@]}" up -d --build --scale silo=3 --scale worker=3 >"$RUN_DIR/up.log" 2>&1; then
  tail -n 15 "$RUN_DIR/up.log" | sed 's/^/  /'
  fail "docker compose up failed"; finish
fi
UP_SECONDS=$((SECONDS - build_started))
say "built and started in $UP_SECONDS s"

containers() { docker ps -q --filter "label=com.docker.compose.project=$PROJECT" --filter "label=com.docker.compose.service=$1" | sort; }
container_name() { docker inspect -f '{{.Name}}' "$1" | sed 's,^/,,'; }
container_ip() { docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' "$1" | awk '{print $1}'; }
host_port() { docker port "$1" "$2/tcp" 2>/dev/null | grep -E '^127\.0\.0\.1:' | head -n1; }

health() { # /health of the first silo that answers
  local c hp
  for c in $(containers silo); do
    hp=$(host_port "$c" 3000) || continue
    [ -n "$hp" ] || continue
    curl -s --max-time 4 "http://$hp/health" 2>/dev/null && return 0
  done
  return 1
}
silo_count() { health | jq -r '.cluster.silos // empty' 2>/dev/null; }

wait_silos() { # $1 = count, $2 = timeout
  local want=$1 deadline=$((SECONDS + $2)) n=""
  while [ $SECONDS -lt $deadline ]; do
    n=$(silo_count)
    [ "$n" = "$want" ] && return 0
    sleep 1
  done
  fail "/health did not show $want silos within $2 s (last: ${n:-no answer})"
  return 1
}

# Waits until every worker reports a grant made after the instant $1 (Unix s with fraction); sets
# GRANTED_AFTER to the seconds from $1 to the latest of those first reports (an upper bound: a worker
# prints each second what it was granted during that second).
wait_grants() {
  local since=$1 what=$2 w first latest=0 deadline=$((SECONDS + RECOVERY_LIMIT + 2))
  local waiting; waiting=$(containers worker)
  GRANTED_AFTER="-"
  while [ -n "$waiting" ] && [ $SECONDS -lt $deadline ]; do
    local still=""
    for w in $waiting; do
      # Lines printed a second or more after the change count only grants made after it.
      first=$(docker logs -t --since "$(awk -v s="$since" 'BEGIN { printf "%.3f", s + 1 }')" "$w" 2>&1 |
        grep -m1 -E '\+ *[1-9][0-9]* granted' | awk '{print $1}')
      if [ -n "$first" ]; then
        first=$(date -d "$first" +%s.%N)
        latest=$(awk -v a="$latest" -v b="$first" -v s="$since" 'BEGIN { d = b - s; print (d > a ? d : a) }')
      else
        still="$still $w"
      fi
    done
    waiting=${still# }
    [ -n "$waiting" ] && sleep 0.5
  done
  if [ -n "$waiting" ]; then
    fail "after $what, $(echo "$waiting" | wc -w) worker(s) reported no grant within $RECOVERY_LIMIT s"
    return 1
  fi
  GRANTED_AFTER=$(awk -v d="$latest" 'BEGIN { printf "%.1f", d }')
  if awk -v d="$latest" -v l="$RECOVERY_LIMIT" 'BEGIN { exit !(d > l) }'; then
    fail "after $what, workers were granted again only after $GRANTED_AFTER s (limit $RECOVERY_LIMIT s)"
    return 1
  fi
  say "after $what: every worker granted again within $GRANTED_AFTER s"
}
now() { date +%s.%N; }

say "waiting for 3 silos in /health"
wait_silos 3 120 || finish
say "3 silos in one cluster ($(elapsed) s); workers: $(containers worker | wc -l)"

# The Redis ledger: the window hash sampled every 50 ms (points left, window end), from the host.
redis_hp=$(host_port "$(containers redis)" 6379)
# One redis-cli repeating the command (-r -1 -i) rather than one process per sample; two lines each.
sample=(--raw -r -1 -i 0.05 hmget "$KEY" points expire)
if command -v redis-cli >/dev/null 2>&1; then
  stdbuf -oL redis-cli -h "${redis_hp%:*}" -p "${redis_hp#*:}" "${sample[@]}" >"$RUN_DIR/ledger.raw" 2>/dev/null &
else
  docker exec "$(containers redis)" redis-cli "${sample[@]}" >"$RUN_DIR/ledger.raw" 2>/dev/null &
fi
SAMPLER_PID=$!

wait_grants "$(now)" "start-up" || finish
scale() { "${COMPOSE[@]}" up -d --no-build --no-recreate --scale silo="$1" --scale worker=3 >>"$RUN_DIR/scale.log" 2>&1; }

say "scaling the silos to 5"
scale 5 || fail "scaling to 5 failed"
wait_silos 5 90
wait_grants "$(now)" "scaling to 5"; up5=$GRANTED_AFTER

host=$(health | jq -r '.providers.demo.silo // empty')
host_ip=${host%%:*}
victim=""
for c in $(containers silo); do [ "$(container_ip "$c")" = "$host_ip" ] && victim=$c; done
if [ -z "$victim" ]; then
  fail "could not find the silo hosting the demo grain (/health says '${host:-nothing}')"; finish
fi
victim_name=$(container_name "$victim")
say "killing $victim_name, the silo hosting the demo provider grain ($host)"
t=$(now)
docker kill "$victim" >/dev/null
wait_grants "$t" "the kill"; killed=$GRANTED_AFTER
# The dead silo leaves the cluster once the others vote it out; its container stays stopped.
wait_silos 4 90 && say "membership shows 4 silos $(awk -v t="$t" -v n="$(now)" 'BEGIN { printf "%.0f", n - t }') s after the kill"
new_host=$(health | jq -r '.providers.demo.silo // empty')
say "the demo grain now lives on ${new_host:-?}"
docker rm -f "$victim" >/dev/null 2>&1

say "scaling the silos down to 1"
scale 1 || fail "scaling to 1 failed"
wait_silos 1 90
wait_grants "$(now)" "scaling to 1"; down1=$GRANTED_AFTER

# A few more windows on one silo, then the workers stop and print their per-window counts.
sleep $((WINDOW * 2 + 1))
say "stopping the workers"
workers=$(containers worker)
docker stop -t 20 $workers >/dev/null
for w in $workers; do docker logs "$w" >"$RUN_DIR/$(container_name "$w").log" 2>&1; done
kill "$SAMPLER_PID" 2>/dev/null; wait "$SAMPLER_PID" 2>/dev/null; SAMPLER_PID=""
paste -d' ' - - <"$RUN_DIR/ledger.raw" >"$RUN_DIR/ledger.txt"

# /admin from the host: closed without the key, open with it.
silo=$(containers silo | head -n1)
admin="http://$(host_port "$silo" 3000)/admin/providers"
without=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$admin")
with=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -H "X-Admin-Key: $LIMITER_ADMIN_KEY" "$admin")
case "$without" in 401 | 403) ;; *) fail "/admin without the key answered $without to the host (want 401 or 403)" ;; esac
[ "$with" = 200 ] || fail "/admin with the key answered $with (want 200)"
say "/admin from the host: $without without the key, $with with it"

# ---------------------------------------------------------------------------------------------------
# Every window: the workers' own grants (WINDOW lines) against the points, next to the Redis ledger.

cat "$RUN_DIR"/*_worker_*.log "$RUN_DIR"/*-worker-*.log 2>/dev/null | grep -E '^WINDOW ' | awk '$5 == "demo" || $5 == ""' >"$RUN_DIR/windows.txt"
summary=$(awk -v points="$POINTS" -v ledger="$RUN_DIR/ledger.txt" '
  FILENAME == ledger { if (NF == 2 && $2 != "") { left = $1 + 0; if (!($2 in min) || left < min[$2]) min[$2] = left } next }
  { total[$3] += $4 }
  END {
    n = 0; over = 0; max = 0; seen = 0; short = 0
    for (w in total) {
      n++
      if (total[w] > max) max = total[w]
      if (total[w] > points) { over++; printf "EXCEEDED window ending %s: workers %d > %d\n", w, total[w], points > "/dev/stderr" }
      if (w in min) { seen++; used = points - min[w]; if (used > points) over++; if (total[w] > used) short++ }
    }
    printf "%d %d %d %d %d\n", n, max, over, seen, short
  }' "$RUN_DIR/ledger.txt" "$RUN_DIR/windows.txt")
read -r windows max_granted over in_ledger ledger_short <<<"$summary"
granted_total=$(awk '{s += $4} END {print s + 0}' "$RUN_DIR/windows.txt")
errors=$(cat "$RUN_DIR"/*worker*.log 2>/dev/null | grep -oE 'errors=[0-9]+' | awk -F= '{s += $2} END {print s + 0}')
say "windows: $windows, granted $granted_total, max $max_granted of $POINTS per ${WINDOW} s window; $in_ledger of them sampled in the Redis ledger ($ledger_short where the last sample trailed the workers' count); worker call errors: $errors"
[ "${windows:-0}" -gt 0 ] || fail "no window was recorded by the workers"
[ "${over:-1}" = 0 ] || fail "$over window(s) granted more than $POINTS points"

FACTS=("silos 3→5→4 (killed the grain host)→1 under 3 workers" "$windows windows of $POINTS points/${WINDOW} s" \
  "max granted $max_granted/$POINTS, $over over" "$granted_total granted" \
  "granted again ${up5} s after scale-up, ${killed} s after the kill, ${down1} s after scale-down" \
  "/admin $without without key, $with with" "$IMAGES_FACT" "compose up --build ${UP_SECONDS} s")
[ "$GATEWAY_PART" = 1 ] || finish

# ---------------------------------------------------------------------------------------------------
# The gateway profile: a virtual key, two gateways in front of two silos, the simulator behind them,
# then two Node workers with the official openai SDK spending provider openai's token quota (one window
# longer than the run, so that the whole run is one window of the ledger).

GATEWAY_COMPOSE=("${COMPOSE[@]}" "${PROFILE_ARGS[@]}")
OPENAI_KEY="ratelimit:openai:global"
LIMITER_KEY=$(docker exec "$(containers silo | head -n1)" limiter keys create --tenant e2e-node 2>"$RUN_DIR/keys.err" | tail -n1)
case "$LIMITER_KEY" in olk_*) ;; *) fail "limiter keys create printed no key (see $RUN_DIR/keys.err)"; finish ;; esac
export LIMITER_KEY NODE_WORKER_SECONDS=${E2E_GATEWAY_SECONDS:-10}
say "virtual key created; docker compose --profile gateway up --build: simulator, 2 gateways, 2 silos (build log: $RUN_DIR/up-gateway.log)"
gateway_started=$SECONDS
if ! "${GATEWAY_COMPOSE[@]}" up -d --build --no-recreate --scale silo=2 --scale worker=0 --scale node-worker=0 >"$RUN_DIR/up-gateway.log" 2>&1; then
  tail -n 15 "$RUN_DIR/up-gateway.log" | sed 's/^/  /'
  fail "docker compose --profile gateway up failed"; finish
fi
GATEWAY_UP_SECONDS=$((SECONDS - gateway_started))
wait_silos 2 90

# Both gateways answer the key (they copy the key table at most every second).
gateway_urls=()
for g in $(containers gateway); do
  hp=$(host_port "$g" 4000)
  code=""
  for _ in $(seq 120); do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 -H "Authorization: Bearer $LIMITER_KEY" "http://$hp/v1/limits" 2>/dev/null)
    [ "$code" = 200 ] && break
    sleep 0.5
    hp=$(host_port "$g" 4000)
  done
  [ "$code" = 200 ] && gateway_urls+=("http://$hp") || fail "gateway $(container_name "$g") did not accept the key within 60 s (last: ${code:-no answer})"
done
[ ${#gateway_urls[@]} = 2 ] || { fail "${#gateway_urls[@]} gateway(s) answering, want 2"; finish; }
sim_hp=$(host_port "$(containers simulator)" 5080)
curl -fs --max-time 5 "http://$sim_hp/stats" >/dev/null || { fail "the simulator does not answer /stats"; finish; }
say "2 gateways and the simulator answer ($(elapsed) s); provider openai: $GATEWAY_REQUESTS requests and $GATEWAY_TOKENS tokens per $((OPENAI_WINDOW)) s window"

redis_exec() { docker exec "$(containers redis)" redis-cli --raw "$@"; }
redis_exec del "$OPENAI_KEY" >/dev/null
say "two Node workers (openai SDK, 8 concurrent calls, 1 streaming) for $NODE_WORKER_SECONDS s through the gateways"
"${GATEWAY_COMPOSE[@]}" up -d --no-build --no-deps --scale node-worker=2 node-worker >>"$RUN_DIR/up-gateway.log" 2>&1 || { fail "starting the Node workers failed"; finish; }
node_workers=$(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT" --filter "label=com.docker.compose.service=node-worker")
for w in $node_workers; do
  code=$(timeout $((NODE_WORKER_SECONDS + 120)) docker wait "$w")
  docker logs "$w" >"$RUN_DIR/node-$(container_name "$w").out" 2>"$RUN_DIR/node-$(container_name "$w").err"
  [ "$code" = 0 ] || fail "Node worker $(container_name "$w") exited with ${code:-no code}"
done

# The gateway settles a call once its caller has the whole answer: the ledger settles within moments.
ledger=""
for _ in $(seq 20); do
  now_ledger=$(redis_exec hmget "$OPENAI_KEY" points tokens:points | paste -sd' ')
  [ "$now_ledger" = "$ledger" ] && break
  ledger=$now_ledger; sleep 0.5
done
read -r requests_left tokens_left <<<"$ledger"
# The provider's rate-limit headers also lower the shared count where they report less left than it holds
# (provider feedback, docs/gateway.md): the gateways log each change, and the ledger holds them too.
feedback=$(for g in $(containers gateway); do docker logs "$g" 2>&1; done | grep 'Provider openai report lowered the shared count of global:')
feedback_requests=$(grep -oE 'requests -[0-9]+' <<<"$feedback" | awk '{ s -= $2 } END { print s + 0 }')
feedback_tokens=$(grep -oE 'tokens -[0-9]+' <<<"$feedback" | awk '{ s -= $2 } END { print s + 0 }')
curl -fs --max-time 5 "http://$sim_hp/stats" >"$RUN_DIR/simulator-stats.json"
read -r node_ok node_streamed node_429 node_errors node_tokens <<<"$(tail -qn1 "$RUN_DIR"/node-*.out | jq -rs \
  '[(map(.ok) | add), (map(.streamed) | add), (map(.rateLimited) | add), (map(.errors) | add), (map(.inputTokens + .outputTokens) | add)] | @tsv')"
read -r sim_served sim_429 sim_tokens <<<"$(jq -r '.openai | [.served, .refusedTotal, (.promptTokens + .completionTokens)] | @tsv' "$RUN_DIR/simulator-stats.json")"
requests_used=$((GATEWAY_REQUESTS - ${requests_left:-$GATEWAY_REQUESTS}))
tokens_used=$((GATEWAY_TOKENS - ${tokens_left:-$GATEWAY_TOKENS}))
say "Node workers: ${node_ok:-?} calls answered (${node_streamed:-?} streamed), ${node_429:-?} waits the gateways could not meet (429 from the shared count), ${node_errors:-?} errors, ${node_tokens:-?} tokens reported"
say "simulator: ${sim_served:-?} calls served, ${sim_429:-?} 429s, ${sim_tokens:-?} tokens; Redis $OPENAI_KEY: $requests_used requests and $tokens_used tokens spent of $GATEWAY_REQUESTS and $GATEWAY_TOKENS, of which the provider's headers took $feedback_requests and $feedback_tokens"
[ "${node_ok:-0}" -gt 0 ] || fail "the Node workers were granted no call"
[ "${node_errors:-1}" = 0 ] || fail "the Node workers met ${node_errors:-?} errors (see $RUN_DIR/node-*.out)"
[ "${sim_429:-1}" = 0 ] || fail "the simulator answered ${sim_429:-?} 429s through the gateways (want 0)"
[ "${node_429:-0}" -gt 0 ] || fail "the Node workers never reached the quota (no 429 from the gateways): the run shows no limit"
[ "$sim_served" = "$node_ok" ] || fail "the simulator served $sim_served calls, the workers were answered $node_ok"
[ "$requests_used" = $((node_ok + feedback_requests)) ] || fail "the ledger spent $requests_used requests, the workers were granted $node_ok calls and the provider's headers took $feedback_requests"
[ "$tokens_used" = $((node_tokens + feedback_tokens)) ] || fail "the ledger spent $tokens_used tokens, the workers reported $node_tokens and the provider's headers took $feedback_tokens"
[ "$sim_tokens" = "$node_tokens" ] || fail "the simulator counted $sim_tokens tokens, the workers reported $node_tokens"

FACTS+=("gateway profile: 2 Node workers (openai SDK) through 2 gateways, $node_ok calls granted ($node_streamed streamed), $node_429 answered 429 by the gateways, ${sim_429} provider 429s" \
  "ledger $requests_used requests, $tokens_used/$GATEWAY_TOKENS tokens = reported $node_tokens + $feedback_tokens from the provider's headers" "gateway profile up --build ${GATEWAY_UP_SECONDS} s")
finish
