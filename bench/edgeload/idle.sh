#!/usr/bin/env bash
# idle.sh BINARY COUNT [SRC] — starts a fresh `gatehouse dev` from BINARY,
# opens COUNT idle sockets with edgeload and prints the server's RSS growth
# per socket, then stops the server. GATEHOUSE_EDGE__PLAIN_HTTP=true measures
# without TLS (as behind a TLS-terminating proxy). A fresh server per count keeps freed
# memory from an earlier run out of the reading.
#   go build -o /tmp/gatehouse ./cmd/gatehouse && go build -o /tmp/edgeload ./bench/edgeload
#   ulimit -n 1048576   # if the hard limit allows; each socket is one fd per side
#   bench/edgeload/idle.sh /tmp/gatehouse 10000 127.0.0.1,127.0.0.2
set -euo pipefail
bin=${1:?binary}; n=${2:?count}; src=${3:-127.0.0.1,127.0.0.2,127.0.0.3,127.0.0.4}
edgeload=${EDGELOAD:-/tmp/edgeload}
data=$(mktemp -d /tmp/ghidle.XXXXXX)
port=${PORT:-18443}
GATEHOUSE_EDGE__MAX_CONNECTIONS=200000 GATEHOUSE_EDGE__MAX_CONNECTIONS_PER_IDENTITY=200000 GATEHOUSE_LOG_LEVEL=warn \
  "$bin" dev --data "$data" --addr "127.0.0.1:$port" >"$data/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 1 100); do grep -q "running" "$data/server.log" && break; sleep 0.2; done
scheme=https; [ "${GATEHOUSE_EDGE__PLAIN_HTTP:-}" = true ] && scheme=http
token=$("$bin" token --data "$data" --sub alice 2>/dev/null | tail -1)
ca=(); [ $scheme = https ] && ca=(-ca "$data/tls/ca.pem")
"$edgeload" idle -url "$scheme://localhost:$port" "${ca[@]}" -token "$token" -pid "$pid" -n "$n" -src "$src" ${EDGELOAD_FLAGS:-}
