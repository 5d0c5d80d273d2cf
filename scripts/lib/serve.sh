# Sourced by the scripts that drive a real server (scripts/clients/run.sh,
# scripts/schemathesis.sh): start `userdir serve` on a free loopback port and wait until it is
# ready, in one place.
#
#   source scripts/lib/serve.sh
#   serve_start BINARY DATABASE_URL DIR [EXTRA SERVE FLAGS...]
#
# Sets SERVE_PORT, SERVE_PID and SERVE_TOKEN_FILE (the bootstrap admin token, DIR/admin.token);
# the server's log is DIR/serve.log. Ready means the token is written and the port accepts a
# connection: a bounded wait (60 s), not a timing. Fails, showing the log's tail, when the
# server exits first or the wait runs out. `serve_stop` stops it (safe to call twice, and from
# an EXIT trap).

SERVE_PID=""
SERVE_PORT=""
SERVE_TOKEN_FILE=""

serve_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

serve_start() {
  local binary="$1" database_url="$2" dir="$3"
  shift 3
  SERVE_PORT="$(serve_free_port)"
  SERVE_TOKEN_FILE="$dir/admin.token"
  "$binary" serve --listen "127.0.0.1:$SERVE_PORT" --database-url "$database_url" \
    --bootstrap-token-file "$SERVE_TOKEN_FILE" "$@" >/dev/null 2>"$dir/serve.log" &
  SERVE_PID=$!
  local _
  for _ in $(seq 1 600); do
    if [ -s "$SERVE_TOKEN_FILE" ] && (exec 3<>"/dev/tcp/127.0.0.1/$SERVE_PORT") 2>/dev/null; then
      return 0
    fi
    if ! kill -0 "$SERVE_PID" 2>/dev/null; then
      echo "userdir serve exited before it was ready; its log:" >&2
      tail -n 20 "$dir/serve.log" >&2
      SERVE_PID=""
      return 1
    fi
    sleep 0.1
  done
  echo "userdir serve was not ready within 60 s; its log:" >&2
  tail -n 20 "$dir/serve.log" >&2
  return 1
}

serve_stop() {
  if [ -n "$SERVE_PID" ]; then
    kill "$SERVE_PID" 2>/dev/null || true
    wait "$SERVE_PID" 2>/dev/null || true
    SERVE_PID=""
  fi
}
