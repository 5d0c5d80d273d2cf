#!/usr/bin/env bash
# Runs scripts/bench_writes.py in the virtual environment of scripts/bench_floor.sh. All
# arguments go to the script, e.g.
#   scripts/bench_writes.sh --binary target/release/userdir --clients 16 --seconds 10 \
#       --database-url postgres://postgres@127.0.0.1:5432/bench_writes
BENCH_SCRIPT=bench_writes.py exec "$(dirname "${BASH_SOURCE[0]}")/bench_floor.sh" "$@"
