#!/usr/bin/env bash
# Runs scripts/soak.py in the virtual environment of scripts/bench_floor.sh. All arguments go
# to the script, e.g.
#   scripts/soak.sh --binary target/release/userdir --seconds 600 --concurrency 32 \
#       --database-url postgres://postgres@127.0.0.1:5432/soak
BENCH_SCRIPT=soak.py exec "$(dirname "${BASH_SOURCE[0]}")/bench_floor.sh" "$@"
