#!/usr/bin/env bash
# Schemathesis against /openapi.json: a seeded server on a free loopback port, every documented
# operation fuzzed for a bounded time with a fixed seed, with the admin's bearer token. Fails on
# a server error, a response that does not conform to the document (body, status), a
# schema-valid request refused or a schema-invalid one accepted.
#
#   bash scripts/schemathesis.sh --binary target/debug/userdir \
#       [--database-url postgres://postgres@127.0.0.1:5432/userdir_ci_schemathesis]
#
# Without --database-url the server runs on a fresh SQLite file. The database is seeded with
# 200 users first (a PostgreSQL database must exist and be empty). Schemathesis comes from a
# venv of our own ($USERDIR_SCHEMATHESIS_VENV, /opt/userdir-schemathesis by default), pinned.
# Only talks to 127.0.0.1. USERDIR_SCHEMATHESIS_MAX_EXAMPLES, USERDIR_SCHEMATHESIS_MAX_SECONDS
# and USERDIR_SCHEMATHESIS_SEED change the bounds of a run.
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
VENV="${USERDIR_SCHEMATHESIS_VENV:-/opt/userdir-schemathesis}"
SEED="${USERDIR_SCHEMATHESIS_SEED:-20261203}"
# Examples per operation in the fuzzing phase: the run's size, and so its length, follows from
# it and the seed (no time budget: Schemathesis fuzzes again and again until one is spent,
# which would make each run test something else).
MAX_EXAMPLES="${USERDIR_SCHEMATHESIS_MAX_EXAMPLES:-20}"
# A ceiling on the whole run (seconds), well under five minutes per backend: past it, the run
# fails.
MAX_SECONDS="${USERDIR_SCHEMATHESIS_MAX_SECONDS:-270}"

binary=""
database_url=""
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary="$2"; shift 2 ;;
    --database-url) database_url="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -n "$binary" ] || { echo "--binary is required" >&2; exit 2; }
binary="$(cd "$(dirname "$binary")" && pwd)/$(basename "$binary")"

if [ "$("$VENV/bin/st" --version 2>/dev/null | grep -o '[0-9][0-9.]*' | head -n 1)" != "$SCHEMATHESIS_VERSION" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION"
fi

scratch="$(mktemp -d /tmp/userdir-schemathesis.XXXXXX)"
server=""
cleanup() {
  if [ -n "$server" ]; then
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  rm -rf "$scratch"
}
trap cleanup EXIT

url="${database_url:-sqlite://$scratch/schemathesis.db?mode=rwc}"
"$binary" seed --users 200 --database-url "$url" >/dev/null 2>&1
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$binary" serve --listen "127.0.0.1:$port" --database-url "$url" \
  --bootstrap-token-file "$scratch/admin.token" >/dev/null 2>"$scratch/serve.log" &
server=$!
for _ in $(seq 1 600); do
  if [ -s "$scratch/admin.token" ] && curl -sf -o /dev/null "http://127.0.0.1:$port/openapi.json"; then
    break
  fi
  if ! kill -0 "$server" 2>/dev/null; then
    echo "userdir serve did not start:" >&2
    tail -n 20 "$scratch/serve.log" >&2
    exit 1
  fi
  sleep 0.2
done
token="$(cat "$scratch/admin.token")"

# No shrinking: a failure is reported as found, which keeps the run within its budget. No
# example database: each run starts from the seed alone. No NUL in generated strings: a
# free-form object (user data, a user schema) may not hold one in its keys either, which
# OpenAPI 3.0 has no way to say (strings say it with their patterns). The baseline lists the
# failures accepted, each with its reason; USERDIR_SCHEMATHESIS_BASELINE_UPDATE=1 adds this
# run's failures to it (then write their reasons in).
baseline_update=()
if [ "${USERDIR_SCHEMATHESIS_BASELINE_UPDATE:-0}" = 1 ]; then
  baseline_update=(--baseline-update)
fi
# Two workers: the run fits its ceiling on a two-core machine.
timeout "$MAX_SECONDS" "$VENV/bin/st" run "http://127.0.0.1:$port/openapi.json" \
  --baseline scripts/schemathesis-baseline.json "${baseline_update[@]}" \
  --generation-database none \
  --checks not_a_server_error,response_schema_conformance,status_code_conformance,positive_data_acceptance,negative_data_rejection,allow_header_conformance \
  --phases examples,coverage,fuzzing \
  --header "Authorization: Bearer $token" \
  --seed "$SEED" \
  --max-examples "$MAX_EXAMPLES" \
  --request-timeout 20 \
  --workers 2 \
  --no-shrink \
  --generation-allow-x00 false \
  --no-color \
  --output-truncate true
