#!/usr/bin/env bash
# Clients we did not write, generated from proto/, against a real server: a Python client
# (grpcio-tools codegen, in a venv of its own), a Node client (@grpc/grpc-js with
# @grpc/proto-loader, in an npm folder of its own) and a Connect client (connect-es, JSON and
# binary, in the same npm folder) each run scripts/clients/*/scenario.* (node/connect.js)
# against `userdir serve` started here on a free loopback port with a fresh database.
#
#   scripts/clients/run.sh [--binary target/debug/userdir] [--database-url URL]
#
# Without --database-url the database is a SQLite file in a temporary folder; a PostgreSQL URL
# must name an empty database. USERDIR_CLIENTS_GZIP=1 runs each scenario a second time with
# every request gzip-compressed (it needs the server's gzip support).
set -euo pipefail
cd "$(dirname "$0")/../.."

binary=target/debug/userdir
database_url=
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary="$2"; shift 2 ;;
    --database-url) database_url="$2"; shift 2 ;;
    *) echo "usage: $0 [--binary PATH] [--database-url URL]" >&2; exit 2 ;;
  esac
done
gzip="${USERDIR_CLIENTS_GZIP:-0}"
venv="${USERDIR_CLIENTS_VENV:-/opt/userdir-clients/python}"
node_dir="${USERDIR_CLIENTS_NODE:-/opt/userdir-clients/node}"
requirements=scripts/clients/python/requirements.txt

# The tools, installed once per machine and again whenever their pinned versions change.
if ! cmp -s "$requirements" "$venv/requirements.txt"; then
  if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv
  fi
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements"
  cp "$requirements" "$venv/requirements.txt"
fi
if ! cmp -s scripts/clients/node/package-lock.json "$node_dir/package-lock.json" \
  || [ ! -d "$node_dir/node_modules" ]; then
  if ! command -v npm >/dev/null 2>&1; then
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm
  fi
  mkdir -p "$node_dir"
  cp scripts/clients/node/package.json scripts/clients/node/package-lock.json "$node_dir/"
  npm ci --prefix "$node_dir" --no-audit --no-fund --loglevel=error
fi

# Our google/api files must be the very files googleapis-common-protos ships, or the generated
# Python code (and genproto's in Go) would meet two different definitions of one file.
site=$("$venv/bin/python" -c 'import google.api.http_pb2 as m, os; print(os.path.dirname(m.__file__))')
for file in annotations.proto http.proto; do
  if ! cmp -s "proto/google/api/$file" "$site/$file"; then
    echo "clients: proto/google/api/$file differs from googleapis-common-protos' copy ($site/$file)" >&2
    exit 1
  fi
done

source scripts/lib/serve.sh
work=$(mktemp -d)
trap 'serve_stop; rm -rf "$work"' EXIT

# Python code generation: only our files; google/api comes from googleapis-common-protos.
mkdir -p "$work/python"
"$venv/bin/python" -m grpc_tools.protoc -I proto --python_out="$work/python" \
  --grpc_python_out="$work/python" proto/userdir/user/v1/*.proto
# The Connect client reads the services from a descriptor set (protobuf-es's registry).
"$venv/bin/python" -m grpc_tools.protoc -I proto --include_imports \
  --descriptor_set_out="$work/userdir.binpb" proto/userdir/user/v1/*.proto

database_url="${database_url:-sqlite://$work/userdir.db?mode=rwc}"
serve_start "$binary" "$database_url" "$work"
port="$SERVE_PORT"
token_file="$SERVE_TOKEN_FILE"
echo "clients: server on 127.0.0.1:$port, database ${database_url%%\?*}"

run_scenarios() { # $1: a suffix for the objects' names, $2...: extra scenario flags
  local suffix="$1"
  shift
  "$venv/bin/python" scripts/clients/python/scenario.py --target "127.0.0.1:$port" \
    --token-file "$token_file" --generated "$work/python" --name "python$suffix" "$@"
  NODE_PATH="$node_dir/node_modules" node scripts/clients/node/scenario.js \
    --target "127.0.0.1:$port" --token-file "$token_file" --proto-dir proto \
    --name "node$suffix" "$@"
  # connect-es over the Connect protocol, JSON and binary, on the same port.
  NODE_PATH="$node_dir/node_modules" node scripts/clients/node/connect.js \
    --target "127.0.0.1:$port" --token-file "$token_file" --descriptor-set "$work/userdir.binpb" \
    --name "connect$suffix" "$@"
  NODE_PATH="$node_dir/node_modules" node scripts/clients/node/connect.js \
    --target "127.0.0.1:$port" --token-file "$token_file" --descriptor-set "$work/userdir.binpb" \
    --name "connect-binary$suffix" --binary "$@"
}
run_scenarios ""
if [ "$gzip" = 1 ]; then
  run_scenarios "-gzip" --gzip
else
  echo "clients: gzip scenarios off (USERDIR_CLIENTS_GZIP=1 runs them)"
fi
