"""Soak (issue 12): a bounded mixed read/write load on one server, then proof that nothing was
lost. Seeds the database when it has fewer than --users users (`userdir seed`), starts
`userdir serve` on a free loopback port with rate limits off, and runs --concurrency Python
grpcio clients (threads spread over a few processes, each with its own channel) for --seconds.

Each client loops over a fixed mix: ListUsers (a nested or/and/not query, an organization's
first page, an email prefix), GetUser of a seeded or of its own user, CreateUser,
SetContactEmail and DeleteUser of users it created itself. Every second the script samples the
server's RSS (/proc/PID/status); per minute it prints throughput, errors, p50 and p99.

At the end it checks what the clients were told: every acknowledged create that was not
deleted is there with the last email acknowledged, every acknowledged delete is gone, the
soak organization's total is exact, the per-organization counters match a count of the users
table, and the event sequence has no gap. It fails (exit 1) on any error during the load, on
any lost or phantom change, or when the RSS grows past --rss-budget-mib.

Run it through scripts/soak.sh (the virtual environment of scripts/bench_floor.sh), e.g.
    scripts/soak.sh --binary target/release/userdir --seconds 600 --concurrency 32 \\
        --database-url postgres://postgres@127.0.0.1:5432/soak
It only talks to 127.0.0.1 and stops by itself. Use a scratch database.
"""

import argparse
import json
import logging
import multiprocessing
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_floor as bf  # noqa: E402  (stubs, ports, server start, raw SQL)

OPERATIONS = ["list_nested", "list_org", "list_prefix", "get_seeded", "get_own", "create", "set_email", "delete"]
# The mix of one client loop, by weight: reads dominate, as in a directory's life.
WEIGHTS = [10, 10, 10, 20, 10, 20, 12, 8]


def rss_kib(pid, field="VmRSS:"):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1])
    raise RuntimeError(f"no {field}")


def percentile(sorted_values, p):
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * p))]


class Client:
    """One client: its own channel, its own users, its own log of what it was told."""

    def __init__(self, port, token, org, schema, seeded, name, deadline, rng, gzip):
        pb, grpc = bf.pb, bf.grpc
        self.pb, self.grpc = pb, grpc
        # --gzip: every call compressed, so every answer is too (the server answers a call in
        # its coding only when the call came compressed).
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.enable_http_proxy", 0)],
                                             compression=grpc.Compression.Gzip if gzip else None)
        self.users = pb.user_service_grpc.UserServiceStub(self.channel)
        self.metadata = [("authorization", f"Bearer {token}")]
        self.org, self.schema, self.seeded, self.name = org, schema, seeded, name
        self.deadline, self.rng = deadline, rng
        self.live = {}  # user id -> the last email acknowledged
        self.deleted = []
        self.samples = []  # (operation index, finished at, milliseconds)
        self.errors = {}
        self.n = 0

    def request(self, operation):
        pb, m = self.pb, self.pb.object
        if operation == "list_nested":
            # locked, or (an email prefix and not a phone prefix)
            return self.users.ListUsers, bf.first_page(
                pb.query.SearchQuery(or_query=pb.query.OrQuery(queries=[
                    bf.q_locked(),
                    pb.query.SearchQuery(and_query=pb.query.AndQuery(queries=[
                        bf.q_email(self.rng.choice("abcdefghijklmnopqrstuvwxyz"),
                                   m.TEXT_QUERY_METHOD_STARTS_WITH_IGNORE_CASE),
                        pb.query.SearchQuery(not_query=pb.query.NotQuery(query=pb.query.SearchQuery(
                            phone_query=pb.query.PhoneQuery(number="+41", method=m.TEXT_QUERY_METHOD_STARTS_WITH)))),
                    ])),
                ])), limit=20)
        if operation == "list_org":
            return self.users.ListUsers, bf.first_page(bf.q_organization(self.org), limit=20)
        if operation == "list_prefix":
            prefix = self.rng.choice("abcdefghijklmnopqrstuvwxyz") + self.rng.choice("aeiou")
            return self.users.ListUsers, bf.first_page(
                bf.q_email(prefix, m.TEXT_QUERY_METHOD_STARTS_WITH_IGNORE_CASE), limit=20)
        if operation == "get_seeded":
            return self.users.GetUser, pb.user_service.GetUserRequest(user_id=self.rng.choice(self.seeded))
        if operation == "get_own" and self.live:
            return self.users.GetUser, pb.user_service.GetUserRequest(user_id=self.rng.choice(list(self.live)))
        if operation == "set_email" and self.live:
            user = self.rng.choice(list(self.live))
            self.n += 1
            address = f"{self.name}-{self.n}@soak.example"
            return self.users.SetContactEmail, pb.user_service.SetContactEmailRequest(
                user_id=user, email=pb.user_service.SetEmail(address=address, is_verified=True)), (user, address)
        if operation == "delete" and len(self.live) > 5:
            user = self.rng.choice(list(self.live))
            return self.users.DeleteUser, pb.user_service.DeleteUserRequest(user_id=user), (user, None)
        # create, and the fallback of an operation on own users before there are any
        from google.protobuf import struct_pb2
        self.n += 1
        username = f"{self.name}-{self.n}"
        data = struct_pb2.Struct()
        data.update({"givenName": username})
        return self.users.CreateUser, pb.user_service.CreateUserRequest(
            organization_id=self.org, schema_id=self.schema, data=data,
            contact=pb.user_service.SetContact(email=pb.user_service.SetEmail(
                address=f"{username}@soak.example", is_verified=True)),
            usernames=[pb.user_service.SetUsername(username=username)]), ("create", f"{username}@soak.example")

    def run(self):
        while time.time() < self.deadline:
            operation = self.rng.choices(OPERATIONS, WEIGHTS)[0]
            method, request, *change = self.request(operation)
            started = time.perf_counter()
            try:
                response = method(request, metadata=self.metadata, timeout=30)
            except self.grpc.RpcError as error:
                code = f"{operation} {error.code().name}: {(error.details() or '')[:80]}"
                self.errors[code] = self.errors.get(code, 0) + 1
                continue
            elapsed = (time.perf_counter() - started) * 1000
            self.samples.append((OPERATIONS.index(operation), time.time(), elapsed))
            if change:
                user, address = change[0]
                if user == "create":
                    self.live[response.user_id] = address
                elif address is None:
                    del self.live[user]
                    self.deleted.append(user)
                else:
                    self.live[user] = address
        self.channel.close()


def process_clients(job):
    """One process of clients (threads): what each was told, and its samples."""
    # grpcio logs why a response could not be decoded ("Exception deserializing response!"
    # is all the call's error says) through logging, which it leaves unconfigured: show it.
    logging.basicConfig(level=logging.ERROR, format="soak client: %(name)s: %(message)s")
    scratch, port, token, org, schema, seeded, process, threads, deadline, gzip = job
    bf.load_stubs_from(os.path.join(scratch, "stubs"))
    # Names unique across runs on one database (a soak may run again on the same one).
    clients = [Client(port, token, org, schema, seeded, f"s{org[-8:]}p{process}t{t}", deadline,
                      random.Random(process * 1000 + t), gzip)
               for t in range(threads)]
    running = [threading.Thread(target=c.run) for c in clients]
    for t in running:
        t.start()
    for t in running:
        t.join()
    live, deleted, samples, errors = {}, [], [], {}
    for c in clients:
        live.update(c.live)
        deleted += c.deleted
        samples += c.samples
        for code, count in c.errors.items():
            errors[code] = errors.get(code, 0) + count
    return live, deleted, samples, errors


def sample_rss(pid, stop, series):
    while not stop.is_set():
        try:
            series.append((time.time(), rss_kib(pid)))
        except (OSError, RuntimeError):
            return
        stop.wait(1.0)


def verify(args, port, token, org, live, deleted):
    """Everything the clients were told, read back; the counters and events by raw SQL."""
    pb, grpc = bf.pb, bf.grpc
    channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.enable_http_proxy", 0)])
    users = pb.user_service_grpc.UserServiceStub(channel)
    metadata = [("authorization", f"Bearer {token}")]
    problems = []
    for user, address in live.items():
        try:
            got = users.GetUser(pb.user_service.GetUserRequest(user_id=user), metadata=metadata, timeout=30).user
            if got.contact.email.address != address:
                problems.append(f"{user}: email {got.contact.email.address!r}, acknowledged {address!r}")
        except grpc.RpcError as error:
            problems.append(f"{user}: acknowledged, then {error.code().name}")
    for user in deleted:
        try:
            users.GetUser(pb.user_service.GetUserRequest(user_id=user), metadata=metadata, timeout=30)
            problems.append(f"{user}: deleted, still there")
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.NOT_FOUND:
                problems.append(f"{user}: deleted, then {error.code().name}")
    total = users.ListUsers(bf.first_page(bf.q_organization(org), limit=1), metadata=metadata,
                            timeout=60).details.total_result
    if total != len(live):
        problems.append(f"soak organization total {total}, acknowledged live users {len(live)}")
    channel.close()

    database = bf.Database(args.database_url)
    database.open()
    counted = dict(database.run("SELECT organization_id, count(*) FROM users GROUP BY organization_id"))
    counters = dict(database.run("SELECT organization_id, sum(total) FROM user_counts GROUP BY organization_id"))
    for organization in set(counted) | set(counters):
        if int(counted.get(organization, 0)) != int(counters.get(organization, 0)):
            problems.append(f"organization {organization}: counter {counters.get(organization)}, "
                            f"users {counted.get(organization)}")
    events, first, last = database.run("SELECT count(*), min(sequence), max(sequence) FROM events")[0]
    if events and last - first + 1 != events:
        problems.append(f"events: {events} rows over sequences {first}..{last}: a gap")
    database.done()
    return problems, events


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--users", type=int, default=100_000, help="seed up to this many users first")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--processes", type=int, default=4, help="client processes the threads spread over")
    parser.add_argument("--seconds", type=int, default=600)
    parser.add_argument("--rss-budget-mib", type=float, default=100.0,
                        help="fail when the server's RSS after the first minute grows past this")
    parser.add_argument("--json", help="write the figures to this file too")
    parser.add_argument("--gzip", action="store_true", help="clients compress every call (and get compressed answers)")
    args = parser.parse_args()

    scratch = tempfile.mkdtemp(prefix="userdir-soak-")
    server = None
    try:
        bf.load_stubs(scratch)
        database = bf.Database(args.database_url)
        have = database.user_count()
        if have < args.users:
            subprocess.run([args.binary, "seed", "--users", str(args.users - have), "--database-url",
                            args.database_url], check=True, stdout=subprocess.DEVNULL,
                           stderr=open(os.path.join(scratch, "seed.log"), "w"))
        port = bf.free_port()
        token_file = os.path.join(scratch, "bootstrap.token")
        server = subprocess.Popen(
            [args.binary, "serve", "--listen", f"127.0.0.1:{port}", "--database-url", args.database_url,
             "--bootstrap-token-file", token_file, "--rate-limit-per-token", "0", "--rate-limit-per-peer", "0"],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(scratch, "serve.log"), "w"))
        bf.wait_until_serving(port, server)
        token = open(token_file).read().strip() if os.path.exists(token_file) else subprocess.run(
            [args.binary, "token", "create", "--admin", "--expires", "2h", "--description", "soak.py",
             "--database-url", args.database_url], check=True, capture_output=True, text=True).stdout.strip()

        pb, grpc = bf.pb, bf.grpc
        from google.protobuf import struct_pb2
        channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.enable_http_proxy", 0)])
        metadata = [("authorization", f"Bearer {token}")]
        stamp = int(time.time())
        org = pb.directory_grpc.OrganizationServiceStub(channel).CreateOrganization(
            pb.directory.CreateOrganizationRequest(name=f"soak {stamp}"), metadata=metadata, timeout=30).organization_id
        schema_doc = struct_pb2.Struct()
        schema_doc.update({"type": "object", "properties": {"givenName": {"type": "string"}}})
        schema = pb.directory_grpc.UserSchemaServiceStub(channel).CreateUserSchema(
            pb.directory.CreateUserSchemaRequest(type=f"soak{stamp}", schema=schema_doc),
            metadata=metadata, timeout=30).schema_id
        seeded = [u.user_id for u in pb.user_service_grpc.UserServiceStub(channel).ListUsers(
            bf.first_page(limit=1000), metadata=metadata, timeout=60).result]
        channel.close()

        stop, rss = threading.Event(), []
        sampler = threading.Thread(target=sample_rss, args=(server.pid, stop, rss), daemon=True)
        sampler.start()
        started = time.time() + 2
        deadline = started + args.seconds
        per_process = [args.concurrency // args.processes + (1 if p < args.concurrency % args.processes else 0)
                       for p in range(args.processes)]
        jobs = [(scratch, port, token, org, schema, seeded, p, n, deadline, args.gzip)
                for p, n in enumerate(per_process) if n]
        with multiprocessing.get_context("spawn").Pool(len(jobs)) as pool:
            results = pool.map(process_clients, jobs)
        stop.set()
        sampler.join()
        peak_mib = rss_kib(server.pid, "VmHWM:") / 1024

        live, deleted, samples, errors = {}, [], [], {}
        for l, d, s, e in results:
            live.update(l)
            deleted += d
            samples += s
            for code, count in e.items():
                errors[code] = errors.get(code, 0) + count
        problems, events = verify(args, port, token, org, live, deleted)
        server.terminate()
        server.wait(timeout=60)

        backend = "postgres" if args.database_url.startswith("postgres") else "sqlite"
        minutes = []
        window = 60 if args.seconds >= 120 else max(1, args.seconds // 4)
        for start in range(0, args.seconds, window):
            in_window = sorted(ms for _, at, ms in samples if started + start <= at < started + start + window)
            rss_in = [kib for at, kib in rss if started + start <= at < started + start + window]
            minutes.append({
                "from_s": start, "calls_per_s": len(in_window) / window,
                "p50_ms": percentile(in_window, 0.50), "p99_ms": percentile(in_window, 0.99),
                "rss_mib": (max(rss_in) / 1024) if rss_in else float("nan"),
            })
        by_operation = {}
        for index, name in enumerate(OPERATIONS):
            ms = sorted(ms for op, _, ms in samples if op == index)
            by_operation[name] = {"calls": len(ms), "p50_ms": percentile(ms, 0.5), "p99_ms": percentile(ms, 0.99)}
        after_warmup = [kib for at, kib in rss if at >= started + min(60, args.seconds / 4)]
        rss_growth = (max(after_warmup) - after_warmup[0]) / 1024 if after_warmup else 0.0

        print(f"{backend}: {args.concurrency} Python grpcio clients{' (gzip)' if args.gzip else ''} for {args.seconds} s, "
              f"{len(samples)} calls ({len(samples) / args.seconds:.0f}/s), errors {errors or 'none'}")
        print(f"{'from':>6} {'calls/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'RSS MiB':>8}")
        for m in minutes:
            print(f"{m['from_s']:>5}s {m['calls_per_s']:>8.0f} {m['p50_ms']:>7.1f} {m['p99_ms']:>7.1f} "
                  f"{m['rss_mib']:>8.1f}")
        for name, figures in by_operation.items():
            print(f"  {name:<12} {figures['calls']:>8} calls  p50 {figures['p50_ms']:6.1f} ms  "
                  f"p99 {figures['p99_ms']:6.1f} ms")
        print(f"peak RSS (VmHWM) {peak_mib:.1f} MiB; RSS growth after warm-up {rss_growth:.1f} MiB; "
              f"{len(live)} live and {len(deleted)} deleted soak users checked; {events} events, no gap"
              if not problems else f"peak RSS {peak_mib:.1f} MiB")
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"backend": backend, "concurrency": args.concurrency, "seconds": args.seconds,
                           "calls": len(samples), "errors": errors, "minutes": minutes, "operations": by_operation,
                           "peak_rss_mib": peak_mib, "rss_growth_mib": rss_growth, "problems": problems[:50]}, f,
                          indent=1)
        failed = False
        if errors:
            print(f"FAIL: errors during the load: {errors}")
            failed = True
        for problem in problems[:20]:
            print(f"FAIL: {problem}")
        failed = failed or bool(problems)
        if peak_mib > args.rss_budget_mib:
            print(f"FAIL: peak RSS {peak_mib:.1f} MiB over the budget of {args.rss_budget_mib} MiB")
            failed = True
        sys.exit(1 if failed else 0)
    finally:
        if server and server.poll() is None:
            server.kill()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
