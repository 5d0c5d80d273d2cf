#!/usr/bin/env bash
# Peak memory of a flood of SetPassword calls (issue 9, finding 5): starts a server on a fresh
# SQLite directory, sends CALLS concurrent SetPassword requests over HTTP/JSON from one admin
# token, and prints the server's peak RSS (VmHWM) before and after. With the hashing bound,
# the growth stays near --max-concurrent-password-hashes × 19 MiB, however many calls arrive;
# the calls beyond the queue are answered 429 at once.
#
#   scripts/password-memory.sh [SERVER_BINARY] [CALLS]
#
# SERVER_BINARY defaults to target/release/userdir (build it with `cargo build --release
# --locked`); CALLS defaults to 120. Extra server flags can be passed in USERDIR_FLAGS, e.g.
# USERDIR_FLAGS="--max-concurrent-password-hashes 2 --password-hash-queue 8".
set -euo pipefail

binary=${1:-target/release/userdir}
calls=${2:-120}
work=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
base="http://127.0.0.1:$port"

cleanup() {
    [[ -n "${server:-}" ]] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

# shellcheck disable=SC2086 # USERDIR_FLAGS is a list of flags.
"$binary" serve --listen "127.0.0.1:$port" \
    --database-url "sqlite://$work/userdir.db?mode=rwc" \
    --bootstrap-token-file "$work/admin.token" \
    --rate-limit-per-token 0 --rate-limit-per-peer 0 \
    ${USERDIR_FLAGS:-} >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 100); do
    [[ -s "$work/admin.token" ]] && curl -s -o /dev/null "$base/v1/users" && break
    sleep 0.1
done
token=$(cat "$work/admin.token")

api() {
    curl -s -X "$1" -H "authorization: Bearer $token" -H 'content-type: application/json' \
        "$base$2" ${3:+-d "$3"}
}
field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }

org=$(api POST /v1/organizations '{"name":"Acme"}' | field organizationId)
schema=$(api POST /v1/user_schemas \
    '{"type":"person","schema":{"type":"object"}}' | field schemaId)
user=$(api POST /v1/users \
    "{\"organizationId\":\"$org\",\"schemaId\":\"$schema\",\"data\":{}}" | field userId)

peak() { awk '/VmHWM/ {print $2}' "/proc/$server/status"; }
before=$(peak)

export token base user
seq "$calls" | xargs -P "$calls" -I{} sh -c \
    'curl -s -o /dev/null -w "%{http_code}\n" -X POST \
        -H "authorization: Bearer $token" -H "content-type: application/json" \
        -d "{\"newPassword\":{\"password\":\"flood password {}\"}}" \
        "$base/v1/users/$user/password"' >"$work/codes"

after=$(peak)
echo "answers: $(sort "$work/codes" | uniq -c | tr '\n' ' ')"
echo "peak RSS before: $((before / 1024)) MiB, after $calls concurrent SetPassword: $((after / 1024)) MiB (+$(((after - before) / 1024)) MiB)"
