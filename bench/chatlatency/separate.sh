#!/usr/bin/env bash
# separate.sh measures the OpenAI-compatible API's added latency with every
# part in its own OS process: the fake upstream, NATS, authz, meter, cache,
# chat and edge, and the load generator. Each part may be pinned to CPUs
# with taskset through the *_CPUS variables (e.g. EDGE_CPUS=2-3), which is
# how to judge the goal of issue 6 on a machine with spare cores.
#
#   bash bench/chatlatency/separate.sh [chatlatency flags, e.g. -rates 200,500 -duration 5s]
#
# NATS_URL picks a running NATS server with JetStream (default: start one
# from nats-server on a free port, state in a temp dir).
set -euo pipefail
cd "$(dirname "$0")/../.."
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

pin() { # pin CPUS CMD...: run CMD in the background, on CPUS when set
  local cpus=$1; shift
  if [ -n "$cpus" ]; then taskset -c "$cpus" "$@" & else "$@" & fi
  pids+=($!)
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

go build -o "$work/gatehouse" ./cmd/gatehouse
go build -o "$work/chatlatency" ./bench/chatlatency

up_port=$(free_port); edge_port=$(free_port)
pin "${UPSTREAM_CPUS:-}" "$work/chatlatency" -serve-upstream "127.0.0.1:$up_port"

nats_url=${NATS_URL:-}
if [ -z "$nats_url" ]; then
  nats_port=$(free_port)
  pin "${NATS_CPUS:-}" nats-server -a 127.0.0.1 -p "$nats_port" -js -sd "$work/nats" >"$work/nats.log" 2>&1
  nats_url="nats://127.0.0.1:$nats_port"
fi

cat > "$work/gatehouse.yaml" <<YAML
log_level: error
nats: {prefix: bench$$}
edge: {addr: "127.0.0.1:$edge_port", plain_http: true}
chat:
  concurrency: 1024
  providers: [{name: fake, type: openai, base_url: "http://127.0.0.1:$up_port/v1", max_concurrent: 4096}]
  models: [{id: fake, provider: fake, max_tokens: 1024, default_max_tokens: 256}]
YAML
common=(-config "$work/gatehouse.yaml" -data "$work/data" -nats-url "$nats_url")
for svc in authz meter cache chat edge; do
  var="$(echo "$svc" | tr a-z A-Z)_CPUS"
  pin "${!var:-}" "$work/gatehouse" "$svc" "${common[@]}"
done
token=$("$work/gatehouse" token --sub bench "${common[@]}")
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$edge_port/readyz" >/dev/null && break
  sleep 0.2
done

load=()
if [ -n "${LOAD_CPUS:-}" ]; then load=(taskset -c "$LOAD_CPUS"); fi
"${load[@]}" "$work/chatlatency" -gateway "http://127.0.0.1:$edge_port" -upstream "http://127.0.0.1:$up_port/v1" -token "$token" "$@"
