#!/usr/bin/env bash
# Makes sure what the tests need is present on a fresh machine, installing
# what is missing. Today: Go (checked) and a reachable Postgres for the
# ledger tests (started when this machine has a local cluster that is down).
set -euo pipefail

command -v go >/dev/null || { echo "test-deps: Go is required (https://go.dev/dl)"; exit 1; }

db_url="${GATEHOUSE_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}"
pg_up() { command -v pg_isready >/dev/null && pg_isready -q -d "$db_url"; }
if command -v pg_isready >/dev/null && ! pg_up; then
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    echo "test-deps: starting the local Postgres cluster"
    for v in $(ls /etc/postgresql); do pg_ctlcluster --skip-systemctl-redirect "$v" main start || true; done
    for _ in $(seq 1 30); do pg_up && break; sleep 1; done
  fi
fi
if command -v psql >/dev/null && pg_up; then
  # The test database may be missing on a fresh cluster.
  admin_url="${db_url%/*}/postgres"
  psql -q "$admin_url" -tc "SELECT 1 FROM pg_database WHERE datname = 'test'" 2>/dev/null | grep -q 1 \
    || psql -q "$admin_url" -c "CREATE DATABASE test" >/dev/null 2>&1 || true
fi
if ! pg_up 2>/dev/null; then
  echo "test-deps: Postgres is not reachable at $db_url; Postgres tests skip locally and fail under CI=true"
fi

# The aws-amplify compatibility test (systemtest/amplify_test.go) runs the
# real Amplify client under Node 20+; install its locked dependencies once.
amplify_dir="$(dirname "$0")/../systemtest/amplify"
if [ ! -d "$amplify_dir/node_modules/aws-amplify" ]; then
  if command -v npm >/dev/null && command -v node >/dev/null; then
    echo "test-deps: installing systemtest/amplify (npm ci)"
    (cd "$amplify_dir" && npm ci --no-audit --no-fund --loglevel=error)
  else
    echo "test-deps: node/npm not found; the aws-amplify compatibility test skips locally and fails under CI=true"
  fi
fi
