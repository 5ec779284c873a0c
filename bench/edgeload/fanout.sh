#!/usr/bin/env bash
# fanout.sh BINARY [edgeload fanout flags...] — starts a fresh `gatehouse dev`
# from BINARY with NATS exposed, runs `edgeload fanout` against it, stops it.
# GATEHOUSE_EDGE__PLAIN_HTTP=true measures without TLS (as behind a
# TLS-terminating proxy), which separates the edge's own cost from TLS.
#   bench/edgeload/fanout.sh /tmp/gatehouse -n 1000 -m 2000
set -euo pipefail
bin=${1:?binary}; shift
edgeload=${EDGELOAD:-/tmp/edgeload}
data=$(mktemp -d /tmp/ghfan.XXXXXX)
port=${PORT:-18443}; nport=${NATS_PORT:-14333}
GATEHOUSE_EDGE__MAX_CONNECTIONS=200000 GATEHOUSE_EDGE__MAX_CONNECTIONS_PER_IDENTITY=200000 GATEHOUSE_LOG_LEVEL=warn \
  "$bin" dev --data "$data" --addr "127.0.0.1:$port" --nats-listen "127.0.0.1:$nport" >"$data/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 1 100); do grep -q "running" "$data/server.log" && break; sleep 0.2; done
scheme=https; [ "${GATEHOUSE_EDGE__PLAIN_HTTP:-}" = true ] && scheme=http
token=$("$bin" token --data "$data" --sub alice 2>/dev/null | tail -1)
ca=(); [ $scheme = https ] && ca=(-ca "$data/tls/ca.pem")
"$edgeload" fanout -url "$scheme://localhost:$port" "${ca[@]}" -token "$token" -nats "nats://127.0.0.1:$nport" -pid "$pid" "$@"
