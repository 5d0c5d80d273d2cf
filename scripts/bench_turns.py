#!/usr/bin/env python3
"""Compares builds on one read shape: each binary serves the same database in turn, and a
sequential Python grpcio loop calls the shape for a few seconds (p50, p95 in ms).

The machine this runs on is shared and noisy; binaries taking turns on the same database, in
one run, compare where absolute times across runs do not. The shapes and the picked values
are bench_floor.py's (`--picked`: the JSON object userdir-bench prints under "picked"; the
unfiltered shapes need none). Run through bench_floor.sh for its virtual environment:

    BENCH_SCRIPT=bench_turns.py scripts/bench_floor.sh --database-url URL --token-file F \\
        --shape first_page --seconds 5 --turns 2 old/userdir new/userdir

Only 127.0.0.1 is served and called; every server is stopped before the next starts.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_floor as bf  # noqa: E402


def loop(service, shape, request, seconds):
    for _ in range(20):  # warm-up: the connection, the statement caches
        service.call(shape, request)
    timings = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        started = time.perf_counter()
        service.call(shape, request)
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    return len(timings), timings[len(timings) // 2], timings[int(len(timings) * 0.95)]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("binaries", nargs="+")
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--database-urls", nargs="+",
                        help="one database per binary, in the binaries' order (a copy of --database-url "
                             "in the schema an older build knows), instead of --database-url for all")
    parser.add_argument("--token-file", required=True, help="a bearer token with user.read, org.read, role.read")
    parser.add_argument("--shape", required=True)
    parser.add_argument("--picked", help="file with userdir-bench's picked values")
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--turns", type=int, default=2)
    args = parser.parse_args()

    bf.load_stubs(tempfile.mkdtemp(prefix="userdir-bench-turns-"))
    picked = json.load(open(args.picked)) if args.picked else {}
    token = open(args.token_file).read().strip()
    shape = next(s for s in bf.shapes() if s.key == args.shape)
    request = shape.request(picked)
    urls = args.database_urls or [args.database_url] * len(args.binaries)
    if len(urls) != len(args.binaries):
        raise SystemExit("--database-urls: one per binary")
    for turn in range(1, args.turns + 1):
        for binary, url in zip(args.binaries, urls):
            port = bf.free_port()
            server = subprocess.Popen(
                [binary, "serve", "--listen", f"127.0.0.1:{port}", "--database-url", url,
                 "--rate-limit-per-token", "0", "--rate-limit-per-peer", "0"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                bf.wait_until_serving(port, server)
                service = bf.Service(port, token)
                calls, p50, p95 = loop(service, shape, request, args.seconds)
                service.close()
            finally:
                server.terminate()
                server.wait()
            print(f"turn {turn} {binary}: {args.shape} calls={calls} p50={p50:.2f} p95={p95:.2f}", flush=True)


if __name__ == "__main__":
    main()
