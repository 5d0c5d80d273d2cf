#!/usr/bin/env python3
"""Peak server memory under hostile input: the server's VmHWM before and after each attack.

Starts `userdir serve` on a fresh database (SQLite in a temporary folder unless
--database-url names another, e.g. an empty PostgreSQL database), on a loopback port, with
rate limits off, and sends only to that port. Python's standard library only, so a client we
did not write drives the server. Each attack prints the growth of the server's peak RSS
(/proc/PID/status VmHWM), which must stay under --budget-mib; the exit code says whether it did.

    cargo build --release
    python3 scripts/hostile_memory.py --binary target/release/userdir
    python3 scripts/hostile_memory.py --binary target/release/userdir \
        --database-url postgres://postgres@127.0.0.1:5432/userdir_memory
"""

import argparse
import concurrent.futures
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import zlib


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_rss_mib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


class Client:
    def __init__(self, port, token):
        self.port = port
        self.token = token

    def call(self, method, path, body=None, timeout=120, headers=None):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        headers = {"authorization": f"Bearer {self.token}", "content-type": "application/json",
                   **(headers or {})}
        try:
            connection.request(method, path, body=data, headers=headers)
            response = connection.getresponse()
            text = response.read()
            return response.status, text
        finally:
            connection.close()

    def json(self, method, path, body=None):
        status, text = self.call(method, path, body)
        if status != 200:
            raise RuntimeError(f"{method} {path}: {status} {text[:300]!r}")
        return json.loads(text)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", default="target/release/userdir")
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    parser.add_argument("--budget-mib", type=float, default=200.0)
    parser.add_argument("--concurrent-passwords", type=int, default=120)
    parser.add_argument("--array-elements", type=int, default=1_000_000)
    parser.add_argument("--bomb-mib", type=int, default=1024,
                        help="what the gzip bomb inflates to")
    parser.add_argument("--serve-arg", action="append", default=[],
                        help="one more argument for `userdir serve`, e.g. "
                             "--serve-arg=--password-hash-queue=200 (repeatable)")
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="userdir-memory-")
    database_url = args.database_url or f"sqlite://{workdir}/userdir.db?mode=rwc"
    port = free_port()
    token_file = os.path.join(workdir, "admin.token")
    server = subprocess.Popen(
        [args.binary, "serve", "--listen", f"127.0.0.1:{port}",
         "--database-url", database_url, "--bootstrap-token-file", token_file,
         "--rate-limit-per-token", "0", "--rate-limit-per-peer", "0", *args.serve_arg],
        stdout=subprocess.DEVNULL, stderr=open(os.path.join(workdir, "server.log"), "w"),
    )
    failures = 0
    try:
        for _ in range(600):
            if os.path.exists(token_file) and os.path.getsize(token_file) > 0:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    pass
            if server.poll() is not None:
                sys.exit(f"the server exited with {server.returncode}; see {workdir}/server.log")
            time.sleep(0.1)
        client = Client(port, open(token_file).read().strip())

        org = client.json("POST", "/v1/organizations", {"name": "Memory"})["organizationId"]
        schema = client.json("POST", "/v1/user_schemas", {
            "type": "memory", "schema": {"type": "object"}})["schemaId"]
        user = client.json("POST", "/v1/users", {
            "organizationId": org, "schemaId": schema, "data": {"name": "victim"}})["userId"]

        def attack(name, run):
            nonlocal failures
            before = peak_rss_mib(server.pid)
            started = time.monotonic()
            outcome = run()
            seconds = time.monotonic() - started
            after = peak_rss_mib(server.pid)
            growth = after - before
            verdict = "ok" if growth < args.budget_mib else "OVER BUDGET"
            failures += growth >= args.budget_mib
            print(f"| {name} | {outcome} | {before:.0f} | {after:.0f} | {growth:+.0f} | "
                  f"{seconds:.1f} | {verdict} |")

        def hostile_body():
            elements = ",".join("1" for _ in range(args.array_elements))
            body = ('{"organizationId": "%s", "schemaId": "%s", "data": {"list": [%s]}}'
                    % (org, schema, elements)).encode()
            status, text = client.call("POST", "/v1/users", body)
            return f"{len(body) / 1e6:.1f} MB body: HTTP {status}"

        def gzip_bomb():
            # A JSON body of --bomb-mib MiB, gzipped as it is made (the inflated bytes are
            # never held here): the server must refuse it at --max-message-bytes.
            compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
            parts = [compressor.compress(b'{"name": "')]
            chunk = b"x" * (1 << 20)
            parts += [compressor.compress(chunk) for _ in range(args.bomb_mib)]
            parts += [compressor.compress(b'"}'), compressor.flush()]
            body = b"".join(parts)
            status, text = client.call("POST", "/v1/organizations", body,
                                       headers={"content-encoding": "gzip"})
            return (f"{len(body) / 1024:.0f} KiB of gzip inflating to {args.bomb_mib} MiB: "
                    f"HTTP {status}")

        def concurrent_passwords():
            def one(i):
                status, _ = client.call("POST", f"/v1/users/{user}/password",
                                        {"newPassword": {"password": f"correct horse {i:04}"}})
                return status
            with concurrent.futures.ThreadPoolExecutor(args.concurrent_passwords) as pool:
                statuses = list(pool.map(one, range(args.concurrent_passwords)))
            counts = {s: statuses.count(s) for s in sorted(set(statuses))}
            return f"{args.concurrent_passwords} SetPassword: " + ", ".join(
                f"{n}× HTTP {s}" for s, n in counts.items())

        print(f"server {args.binary} {' '.join(args.serve_arg)}, "
              f"database {database_url.split('?')[0]}")
        print("| attack | answers | peak RSS before (MiB) | after (MiB) | growth (MiB) | seconds | verdict |")
        print("|---|---|---|---|---|---|---|")
        attack("JSON body, `data` with a million-element array", hostile_body)
        attack("gzip bomb: a JSON body that inflates far past the body limit", gzip_bomb)
        attack("concurrent password hashing", concurrent_passwords)
        status, _ = client.call("GET", f"/v1/users/{user}")
        print(f"server alive afterwards: GetUser HTTP {status}")
        failures += status != 200
    finally:
        server.terminate()
        server.wait(timeout=30)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
