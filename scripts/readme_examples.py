"""Runs the README's grpcurl and curl examples as written, against a seeded server: every
```sh block that talks to 127.0.0.1:8080 (except the one that starts the server), in README
order, in one bash session with `set -euo pipefail`, so ids captured by one block serve the
next. The server is the binary given, on a free loopback port (written into the examples in
place of 127.0.0.1:8080), on a fresh database seeded with 10,000 users, with its bootstrap
token in $TOKEN. Fails when a block exits non-zero (grpcurl does on any error status) or when
a block answers an HTTP error to curl.

    python3 scripts/readme_examples.py --binary target/debug/userdir \\
        [--database-url postgres://postgres@127.0.0.1:5432/readme_examples]

Needs grpcurl, jq and oathtool on PATH (.ci/run installs them). Only talks to 127.0.0.1.
"""

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README_ADDRESS = "127.0.0.1:8080"


def blocks(readme):
    """(line, text) of the sh blocks that call the running server."""
    for match in re.finditer(r"^( *)```sh\n(.*?)^\1```", readme, re.S | re.M):
        text = match.group(2)
        if README_ADDRESS in text and not re.search(r"^\s*(userdir|cargo run.*--) serve\b", text, re.M):
            indent = match.group(1)
            text = "\n".join(line[len(indent):] if line.startswith(indent) else line
                             for line in text.splitlines())
            yield readme[:match.start()].count("\n") + 1, text


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", required=True)
    parser.add_argument("--database-url")
    parser.add_argument("--users", type=int, default=10_000)
    args = parser.parse_args()
    for tool in ("grpcurl", "jq", "oathtool", "curl"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is not on PATH")
    binary = os.path.abspath(args.binary)
    scratch = tempfile.mkdtemp(prefix="userdir-readme-")
    url = args.database_url or f"sqlite://{scratch}/readme.db?mode=rwc"
    server = None
    try:
        subprocess.run([binary, "seed", "--users", str(args.users), "--database-url", url], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port = free_port()
        token_file = os.path.join(scratch, "admin.token")
        server = subprocess.Popen(
            [binary, "serve", "--listen", f"127.0.0.1:{port}", "--database-url", url,
             "--bootstrap-token-file", token_file],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(scratch, "serve.log"), "w"))
        deadline = time.monotonic() + 120
        while not os.path.exists(token_file) or os.path.getsize(token_file) == 0:
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("userdir serve did not start; see its log:\n"
                                 + open(os.path.join(scratch, "serve.log")).read()[-2000:])
            time.sleep(0.2)
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)

        readme = open(os.path.join(REPO, "README.md")).read()
        found = list(blocks(readme))
        # curl answers HTTP errors with exit status 0; in the examples an error is a failure.
        script = ["set -euo pipefail",
                  "curl() { command curl --fail-with-body --silent --show-error \"$@\"; }"]
        for line, text in found:
            script.append(f"echo '=== README.md line {line}' >&2")
            script.append(text.replace(README_ADDRESS, f"127.0.0.1:{port}"))
        env = dict(os.environ, TOKEN=open(token_file).read().strip())
        run = subprocess.run(["bash", "-c", "\n".join(script)], cwd=scratch, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        done = run.stderr.count("=== README.md line")
        if run.returncode != 0:
            last = [l for l in run.stderr.splitlines() if l.startswith("=== README.md line")][-1:]
            print(run.stdout[-3000:])
            print(run.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"README example failed ({last[0][4:] if last else 'before the first block'}, "
                             f"exit {run.returncode})")
        print(f"README examples: {done} blocks ran against {url.split('?')[0].split('://')[0]}, all answered")
    finally:
        if server and server.poll() is None:
            server.terminate()
            server.wait(timeout=30)
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
