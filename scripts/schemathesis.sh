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
MAX_EXAMPLES="${USERDIR_SCHEMATHESIS_MAX_EXAMPLES:-50}"
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

source scripts/lib/serve.sh
scratch="$(mktemp -d /tmp/userdir-schemathesis.XXXXXX)"
trap 'serve_stop; rm -rf "$scratch"' EXIT

url="${database_url:-sqlite://$scratch/schemathesis.db?mode=rwc}"
"$binary" seed --users 200 --database-url "$url" >/dev/null 2>&1
serve_start "$binary" "$url" "$scratch"
port="$SERVE_PORT"
token="$(cat "$scratch/admin.token")"

# The examples and fuzzing phases: the coverage phase (every boundary of every schema, a
# deterministic but large set) alone runs past the ceiling on a two-core machine. No
# shrinking: a failure is reported as found, which keeps the run within its budget. No
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
# positive_data_acceptance_beside_state (scripts/schemathesis_hooks.py) is Schemathesis's
# positive_data_acceptance, except that a FailedPrecondition (the directory's state refusing a
# change, which no schema states) is not a rejected request.
# No cache either (.schemathesis/ with the crashes of earlier runs, replayed first): a run
# depends on its seed alone.
printf '[cache]\nenabled = false\n' >"$scratch/schemathesis.toml"
SCHEMATHESIS_HOOKS=scripts/schemathesis_hooks.py \
  timeout "$MAX_SECONDS" "$VENV/bin/st" --config-file "$scratch/schemathesis.toml" run "http://127.0.0.1:$port/openapi.json" \
  --baseline scripts/schemathesis-baseline.json "${baseline_update[@]}" \
  --generation-database none \
  --checks not_a_server_error,response_schema_conformance,status_code_conformance,positive_data_acceptance_beside_state,negative_data_rejection,allow_header_conformance \
  --phases examples,fuzzing \
  --header "Authorization: Bearer $token" \
  --seed "$SEED" \
  --max-examples "$MAX_EXAMPLES" \
  --request-timeout 20 \
  --workers 2 \
  --no-shrink \
  --generation-allow-x00 false \
  --no-color \
  --output-truncate true
