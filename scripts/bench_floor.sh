#!/usr/bin/env bash
# Runs scripts/bench_floor.py in its own virtual environment (grpcio, grpcio-tools,
# psycopg2-binary), made on first use under target/bench-floor/venv (BENCH_FLOOR_VENV to
# choose another place); BENCH_SCRIPT names another script of scripts/ to run there (see
# bench_writes.sh). All arguments go to the script, e.g.
#   scripts/bench_floor.sh --binary target/release/userdir --users 1000000 \
#       --database-url 'sqlite:///tmp/bench.db?mode=rwc'
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${BENCH_FLOOR_VENV:-$repo/target/bench-floor/venv}"
python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null || python=python3
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import grpc, grpc_tools, psycopg2, pysqlite3' 2>/dev/null; then
  "$python" -m venv "$venv"
  # pysqlite3-binary: the SQLite floor runs on the release the service bundles (see bench_floor.py).
  "$venv/bin/pip" install --quiet grpcio grpcio-tools psycopg2-binary pysqlite3-binary
fi
exec "$venv/bin/python" "$repo/scripts/${BENCH_SCRIPT:-bench_floor.py}" "$@"
