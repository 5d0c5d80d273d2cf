#!/usr/bin/env bash
# Runs scripts/bench_writes.py in the virtual environment of scripts/bench_floor.sh (grpcio,
# grpcio-tools, psycopg2-binary; BENCH_FLOOR_VENV to choose its place). All arguments go to the
# script, e.g.
#   scripts/bench_writes.sh --binary target/release/userdir --clients 16 --seconds 10 \
#       --database-url postgres://postgres@127.0.0.1:5432/bench_writes
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${BENCH_FLOOR_VENV:-$repo/target/bench-floor/venv}"
python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null || python=python3
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import grpc, grpc_tools, psycopg2' 2>/dev/null; then
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet grpcio grpcio-tools psycopg2-binary
fi
exec "$venv/bin/python" "$repo/scripts/bench_writes.py" "$@"
