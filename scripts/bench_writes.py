"""Write throughput beside its floor (issue 12): concurrent CreateUser calls (one username, a
verified email) from Python grpcio clients, one process each, for a fixed time, on a running
server of the binary given; on PostgreSQL, beside pgbench running the same three inserts (a
user row, a username row, an event row) as one transaction each, with the same number of
clients, into copies of those tables (same columns and indexes) on the same database.

Run it through scripts/bench_writes.sh (a virtual environment with grpcio), e.g.
    scripts/bench_writes.sh --binary target/release/userdir --clients 16 --seconds 10 \\
        --database-url postgres://postgres@127.0.0.1:5432/bench_writes
It only talks to 127.0.0.1 and stops by itself. The database should be a scratch one: the
bench adds an organization, a schema, the users it creates and (PostgreSQL) the floor's
tables, which it drops again.
"""

import argparse
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_floor as bf  # noqa: E402  (stubs, ports, server start)


def admin_token(args, scratch, token_file):
    if os.path.exists(token_file):
        return open(token_file).read().strip()
    return subprocess.run(
        [args.binary, "token", "create", "--admin", "--expires", "1h", "--description", "bench_writes.py",
         "--database-url", args.database_url],
        check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]


def writer(job):
    """One client process: CreateUser until the deadline; (acknowledged, errors by code)."""
    scratch, port, token, org, schema, client, deadline = job
    bf.load_stubs_from(os.path.join(scratch, "stubs"))
    pb, grpc = bf.pb, bf.grpc
    from google.protobuf import struct_pb2
    channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.enable_http_proxy", 0)])
    users = pb.user_service_grpc.UserServiceStub(channel)
    metadata = [("authorization", f"Bearer {token}")]
    done, errors, n = 0, {}, 0
    while time.time() < deadline:
        name = f"w{client}-{n}"
        n += 1
        data = struct_pb2.Struct()
        data.update({"givenName": name})
        request = pb.user_service.CreateUserRequest(
            organization_id=org, schema_id=schema, data=data,
            contact=pb.user_service.SetContact(email=pb.user_service.SetEmail(
                address=f"{name}@bench.example", is_verified=True)),
            usernames=[pb.user_service.SetUsername(username=name)])
        try:
            users.CreateUser(request, metadata=metadata, timeout=30)
            done += 1
        except grpc.RpcError as error:
            code = f"{error.code().name}: {error.details()[:80]}"
            errors[code] = errors.get(code, 0) + 1
    channel.close()
    return done, errors


def service_rate(args, scratch, port, token, org, schema):
    deadline = time.time() + 2 + args.seconds
    jobs = [(scratch, port, token, org, schema, client, deadline) for client in range(args.clients)]
    started = time.time() + 2
    with multiprocessing.get_context("spawn").Pool(args.clients) as pool:
        results = pool.map(writer, jobs)
    elapsed = max(time.time() - started, 1e-9)
    acknowledged = sum(r[0] for r in results)
    errors = {}
    for _, e in results:
        for code, count in e.items():
            errors[code] = errors.get(code, 0) + count
    return acknowledged / elapsed, acknowledged, errors


# The floor's transaction: the rows a CreateUser writes to the three tables, with values of each
# column's type; ids and sequences unique.
def floor_script(database):
    columns = {}
    for table in ("users", "usernames", "events"):
        columns[table] = database.run(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position", [table])
    database.done()

    def value(table, column, kind):
        if kind == "text":
            return "gen_random_uuid()::text"
        if kind in ("bigint", "integer", "smallint"):
            return "nextval('floor_sequence')" if column in ("sequence", "id") else "1"
        if kind == "boolean":
            return "false"
        if kind in ("jsonb", "json"):
            return "'{\"givenName\": \"floor\"}'"
        raise SystemExit(f"floor: no value for {table}.{column} ({kind})")

    statements = ["BEGIN;"]
    for table, cols in columns.items():
        names = ", ".join(c for c, _ in cols)
        values = ", ".join(value(table, c, k) for c, k in cols)
        statements.append(f"INSERT INTO floor_{table} ({names}) VALUES ({values});")
    statements.append("COMMIT;")
    return "\n".join(statements) + "\n"


def floor_rate(args, scratch):
    database = bf.Database(args.database_url)
    database.open()
    url = args.database_url
    setup = ["DROP SEQUENCE IF EXISTS floor_sequence", "CREATE SEQUENCE floor_sequence"]
    for table in ("users", "usernames", "events"):
        setup += [f"DROP TABLE IF EXISTS floor_{table}",
                  f"CREATE TABLE floor_{table} (LIKE {table} INCLUDING ALL)"]
    for statement in setup:
        subprocess.run(["psql", url, "-qc", statement], check=True)
    path = os.path.join(scratch, "floor.sql")
    with open(path, "w") as f:
        f.write(floor_script(database))
    out = subprocess.run(["pgbench", "-n", "-c", str(args.clients), "-j", "2", "-T", str(args.seconds),
                          "-f", path, url], check=True, capture_output=True, text=True).stdout
    tps = next(float(line.split("=")[1].split()[0]) for line in out.splitlines() if line.startswith("tps ="))
    for table in ("users", "usernames", "events"):
        subprocess.run(["psql", url, "-qc", f"DROP TABLE floor_{table}"], check=True)
    subprocess.run(["psql", url, "-qc", "DROP SEQUENCE floor_sequence"], check=True)
    return tps


def peak_rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("no VmHWM")


def write_grouping(metrics_port):
    """How the server grouped the writes, from its metrics: writes per COMMIT, users per batch."""
    import urllib.request
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)

    def ratio(numerator, denominator):
        total = values.get(denominator, 0)
        return f"{values.get(numerator, 0) / total:.1f}" if total else "-"
    return (f"writes per COMMIT {ratio('userdir_write_group_units_total', 'userdir_write_group_commits_total')}, "
            f"users per batch {ratio('userdir_create_batched_users_total', 'userdir_create_batches_total')}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()

    scratch = tempfile.mkdtemp(prefix="userdir-bench-writes-")
    server = None
    try:
        bf.load_stubs(scratch)
        port = bf.free_port()
        metrics_port = bf.free_port()
        token_file = os.path.join(scratch, "bootstrap.token")
        server = subprocess.Popen(
            [args.binary, "serve", "--listen", f"127.0.0.1:{port}", "--database-url", args.database_url,
             "--bootstrap-token-file", token_file, "--rate-limit-per-token", "0", "--rate-limit-per-peer", "0",
             "--metrics-listen", f"127.0.0.1:{metrics_port}"],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(scratch, "serve.log"), "w"))
        bf.wait_until_serving(port, server)
        token = admin_token(args, scratch, token_file)
        pb, grpc = bf.pb, bf.grpc
        from google.protobuf import struct_pb2
        channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.enable_http_proxy", 0)])
        metadata = [("authorization", f"Bearer {token}")]
        orgs = pb.directory_grpc.OrganizationServiceStub(channel)
        schemas = pb.directory_grpc.UserSchemaServiceStub(channel)
        stamp = int(time.time())
        org = orgs.CreateOrganization(pb.directory.CreateOrganizationRequest(name=f"bench writes {stamp}"),
                                      metadata=metadata, timeout=30).organization_id
        schema_doc = struct_pb2.Struct()
        schema_doc.update({"type": "object", "properties": {"givenName": {"type": "string"}}})
        schema = schemas.CreateUserSchema(pb.directory.CreateUserSchemaRequest(type=f"bench{stamp}", schema=schema_doc),
                                          metadata=metadata, timeout=30).schema_id
        channel.close()

        rate, acknowledged, errors = service_rate(args, scratch, port, token, org, schema)
        grouping = write_grouping(metrics_port)
        peak_mib = peak_rss_kib(server.pid) / 1024
        server.terminate()
        server.wait(timeout=60)
        backend = "postgres" if args.database_url.startswith("postgres") else "sqlite"
        print(f"{backend}: CreateUser, {args.clients} Python grpcio clients, {args.seconds} s: "
              f"{rate:.0f}/s ({acknowledged} acknowledged, errors {errors or 'none'}; {grouping}; "
              f"peak server RSS {peak_mib:.1f} MiB)")
        if backend == "postgres" and shutil.which("pgbench"):
            floor = floor_rate(args, scratch)
            print(f"{backend}: floor, pgbench, the same three inserts a transaction, {args.clients} clients: "
                  f"{floor:.0f} tps; service/floor {rate / floor:.0%}")
    finally:
        if server and server.poll() is None:
            server.kill()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
