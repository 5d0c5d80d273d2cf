#!/usr/bin/env python3
"""Every read shape of issue 11 through the service and by raw SQL (the floor), in one run.

Seeds the database when it has fewer than --users users (`userdir seed`), starts
`userdir serve` on a free loopback port with rate limits off, and sends traffic only there.
`userdir-bench --json` (our tonic client) picks the search values from the running server and
measures every shape first; then this script measures the same requests through Python grpcio
(stubs generated from proto/ into a scratch folder) and the same answer by raw SQL on the same
database (the exact total, the page of full user rows and their authenticators, in one read
transaction; psycopg2 for PostgreSQL, sqlite3 for SQLite). It checks that the service and the
floor agree (total and page ids), prints one table with the issue's targets, the server's peak
RSS (VmHWM), and stops the server.

Run it through scripts/bench_floor.sh, which makes the virtual environment:

    cargo build --release --bins
    scripts/bench_floor.sh --binary target/release/userdir --users 1000000 \
        --database-url 'sqlite:///tmp/bench.db?mode=rwc'
    scripts/bench_floor.sh --binary target/release/userdir --users 1000000 \
        --database-url postgres://postgres@127.0.0.1:5432/bench
"""

import argparse
import http.client
import itertools
import json
import os
import re
import shutil
import socket
try:
    # The floor is planned by the SQLite release the service links (libsqlite3-sys bundles a
    # recent one, 3.51 today), not by Python's own, which may be years older: the planners
    # differ (3.40 walks the order's index for an OR of indexed terms where 3.51 merges the
    # branches' index reads and sorts them).
    import pysqlite3 as sqlite3
except ImportError:
    import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Callable, Optional

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Filled by load_stubs(): the generated modules.
pb = None  # userdir.user.v1 messages (user_service, query, object, directory_service)
grpc = None


# --- The shapes: the request and its floor SQL side by side -----------------------------------

DEFAULT_ORDER = "created_at DESC, id DESC"


def like_escape(value):
    return "".join("\\" + c if c in "%_\\" else c for c in value)


def prefix_range(prefix):
    """[low, high) holding exactly the strings that start with `prefix` in code point order
    (SQLite's BINARY collation, PostgreSQL's C collation): an index range seek."""
    return [prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)]


@dataclass
class Target:
    """One of the issue's targets for a shape's service p50."""

    text: str
    met: Callable[[float, float, str], bool]  # (service p50, floor p50, backend) -> met?


def under(ms):
    return Target(f"< {ms:g} ms", lambda service, floor, backend: service < ms)


def floor_plus(ms):
    return Target(f"floor + {ms:g} ms", lambda service, floor, backend: service <= floor + ms)


def within(ratio):
    return Target(f"{ratio:g}x floor", lambda service, floor, backend: service <= floor * ratio)


# The p50 of the unfiltered first page through Python, once measured: what a page reached by
# token is held to.
FIRST_PAGE_P50 = {}


def first_page_plus(ms):
    return Target(f"first page + {ms:g} ms",
                  lambda service, floor, backend: service <= FIRST_PAGE_P50.get("py", 0) + ms)


SUBSTRING = Target(
    "< 20 ms PG, < 50 ms SQLite",
    lambda service, floor, backend: service < (20 if backend == "postgres" else 50),
)


@dataclass
class Shape:
    key: str  # the same key as userdir-bench's
    call: str  # "list", "get", "role", "logto"
    request: Callable  # picked values -> request message (Logto: the path)
    where: Optional[str] = None  # the floor's WHERE (None: every user), `?` parameters
    params: Callable = lambda p: []
    order: str = DEFAULT_ORDER
    limit: int = 100
    offset: Callable = lambda p: 0
    target: Optional[Target] = None
    # Per backend replacements of `where`, or of the whole page statement.
    where_by_backend: dict = field(default_factory=dict)
    params_by_backend: dict = field(default_factory=dict)
    page_by_backend: dict = field(default_factory=dict)
    # A keyset seek that narrows the page but not the total (a page reached by token), `?`
    # parameters after those of `where`; per backend like `where`.
    seek: Optional[str] = None
    seek_params: Callable = lambda p: []
    seek_by_backend: dict = field(default_factory=dict)


def q_email(value, method):
    return pb.query.SearchQuery(email_query=pb.query.EmailQuery(address=value, method=method))


def q_locked():
    return pb.query.SearchQuery(state_query=pb.query.StateQuery(state=pb.user.USER_STATE_LOCKED))


def q_organization(id):
    return pb.query.SearchQuery(
        organization_id_query=pb.query.OrganizationIDQuery(id=id, method=pb.object.TEXT_QUERY_METHOD_EQUALS)
    )


def first_page(*queries, limit=100, offset=0, asc=False, sort=0):
    return pb.user_service.ListUsersRequest(
        query=pb.object.ListQuery(offset=offset, limit=limit, asc=asc), sorting_column=sort, queries=queries
    )


def nested(p):
    m = pb.object
    return first_page(
        pb.query.SearchQuery(
            or_query=pb.query.OrQuery(
                queries=[
                    q_locked(),
                    pb.query.SearchQuery(
                        and_query=pb.query.AndQuery(
                            queries=[
                                q_email(p["email_prefix"]["value"], m.TEXT_QUERY_METHOD_STARTS_WITH_IGNORE_CASE),
                                pb.query.SearchQuery(
                                    not_query=pb.query.NotQuery(
                                        query=pb.query.SearchQuery(
                                            phone_query=pb.query.PhoneQuery(
                                                number=p["phone_prefix"], method=m.TEXT_QUERY_METHOD_STARTS_WITH
                                            )
                                        )
                                    )
                                ),
                            ]
                        )
                    ),
                ]
            )
        )
    )


def logto_name_path(value, page_size=100):
    return f"/api/users?page_size={page_size}&search.name=" + urllib.parse.quote(f"%{like_escape(value)}%", safe="")


def shapes():
    m = pb.object
    return [
        Shape("get_user", "get", lambda p: pb.user_service.GetUserRequest(user_id=p["user_id"]),
              where="id = ?", params=lambda p: [p["user_id"]], target=floor_plus(1)),
        Shape("first_page", "list", lambda p: first_page(), target=under(5)),
        Shape("org_large", "list", lambda p: first_page(q_organization(p["organization_large"]["value"])),
              where="organization_id = ?", params=lambda p: [p["organization_large"]["value"]], target=under(5)),
        Shape("org_small", "list", lambda p: first_page(q_organization(p["organization_small"]["value"])),
              where="organization_id = ?", params=lambda p: [p["organization_small"]["value"]], target=under(5)),
        Shape("state_locked", "list", lambda p: first_page(q_locked()), where="state = 4", target=under(5)),
        Shape("email_eq", "list", lambda p: first_page(q_email(p["email"], m.TEXT_QUERY_METHOD_EQUALS)),
              where="email = ?", params=lambda p: [p["email"]], target=floor_plus(1)),
        Shape("email_eq_ic", "list",
              lambda p: first_page(q_email(p["email"].upper(), m.TEXT_QUERY_METHOD_EQUALS_IGNORE_CASE)),
              where="email_lower = ?", params=lambda p: [p["email_folded"]], target=floor_plus(1)),
        Shape("email_starts_ic", "list",
              lambda p: first_page(q_email(p["email_prefix"]["value"], m.TEXT_QUERY_METHOD_STARTS_WITH_IGNORE_CASE)),
              where="email_lower >= ? AND email_lower < ?", params=lambda p: prefix_range(p["email_prefix"]["value"]),
              target=floor_plus(1)),
        Shape("email_contains_ic", "list",
              lambda p: first_page(q_email(p["email_infix"]["value"], m.TEXT_QUERY_METHOD_CONTAINS_IGNORE_CASE)),
              where="email_lower LIKE ? ESCAPE '\\'",  # pg_trgm serves it on PostgreSQL
              params=lambda p: [f"%{like_escape(p['email_infix']['value'])}%"],
              where_by_backend={"sqlite": "instr(email_lower, ?) > 0"},
              params_by_backend={"sqlite": lambda p: [p["email_infix"]["value"]]}, target=SUBSTRING),
        Shape("email_ends_ic", "list",
              lambda p: first_page(q_email(p["email_suffix"]["value"], m.TEXT_QUERY_METHOD_ENDS_WITH_IGNORE_CASE)),
              where="email_lower LIKE ? ESCAPE '\\'", params=lambda p: [f"%{like_escape(p['email_suffix']['value'])}"],
              target=SUBSTRING),
        Shape("username_eq_ic", "list",
              lambda p: first_page(pb.query.SearchQuery(username_query=pb.query.UsernameQuery(
                  username=p["username"].upper(), method=m.TEXT_QUERY_METHOD_EQUALS_IGNORE_CASE))),
              where="id IN (SELECT user_id FROM usernames WHERE username_lower = ?)",
              params=lambda p: [p["username_folded"]], target=floor_plus(1)),
        Shape("name_contains_ic", "logto", lambda p: logto_name_path(p["name_infix"]["value"]),
              where="name_lower LIKE ? ESCAPE '\\'",
              params=lambda p: [f"%{like_escape(p['name_infix']['value'])}%"],
              where_by_backend={"sqlite": "instr(name_lower, ?) > 0"},
              params_by_backend={"sqlite": lambda p: [p["name_infix"]["value"]]}, target=SUBSTRING),
        Shape("offset_deep", "list", lambda p: first_page(offset=p["offset"]), offset=lambda p: p["offset"],
              target=within(1.5)),
        # The page after `offset_deep`'s, reached by the token that page answered: a seek on
        # the default order's index instead of counting past the offset.
        Shape("token_deep", "list",
              lambda p: pb.user_service.ListUsersRequest(
                  query=pb.object.ListQuery(limit=100, page_token=p["token"]["value"])),
              seek="(created_at, id) < (?, ?)",
              seek_params=lambda p: [p["token"]["created_at"], p["token"]["id"]],
              target=first_page_plus(2)),
        Shape("sort_email", "list", lambda p: first_page(asc=True, sort=pb.query.FIELD_NAME_EMAIL),
              order="email_lower ASC NULLS LAST, id ASC", target=under(10),
              # SQLite's index holds NULLs first: the users with an email by the index, then
              # the others.
              page_by_backend={"sqlite": "SELECT * FROM (SELECT * FROM users WHERE email_lower IS NOT NULL "
                                         "ORDER BY email_lower, id LIMIT 100) UNION ALL SELECT * FROM ("
                                         "SELECT * FROM users WHERE email_lower IS NULL ORDER BY id LIMIT 100) "
                                         "LIMIT 100"}),
        Shape("nested", "list", nested,
              where="(state = 4 OR (email_lower >= ? AND email_lower < ? "
                    "AND NOT (phone IS NOT NULL AND phone >= ? AND phone < ?)))",
              params=lambda p: prefix_range(p["email_prefix"]["value"]) + prefix_range(p["phone_prefix"]),
              target=within(1.5)),
        Shape("limit_1000", "list", lambda p: first_page(limit=1000), limit=1000, target=within(1.5)),
        Shape("role_users", "role",
              lambda p: pb.directory.ListRoleUsersRequest(role_id=p["role"]["value"],
                                                           query=pb.object.ListQuery(limit=100)),
              where="id IN (SELECT user_id FROM role_assignments WHERE role_id = ?)",
              params=lambda p: [p["role"]["value"]], target=under(5)),
    ]


# The authenticators of a page, in one statement: the columns the API returns, by kind (the
# first branch types the empty slots, for PostgreSQL's union). `{wanted}` is the page's ids:
# on SQLite a common table of them, on PostgreSQL one array parameter (faster there).
AUTHENTICATORS = """
{cte}
SELECT 1 AS kind, user_id, id, created_at AS sort_at, username AS t1, CAST(NULL AS text) AS t2,
       CAST(NULL AS text) AS t3, CAST(NULL AS text) AS t4, is_organization_specific AS f1,
       CAST(NULL AS boolean) AS f2, CAST(NULL AS bigint) AS n1, CAST(NULL AS bigint) AS n2,
       CAST(NULL AS bigint) AS n3
  FROM usernames WHERE user_id {wanted}
UNION ALL SELECT 2, user_id, user_id, changed_at, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
  FROM passwords WHERE user_id {wanted}
UNION ALL SELECT 3, user_id, id, created_at, name, NULL, NULL, NULL, is_verified, user_verified, NULL, NULL, NULL
  FROM webauthn_credentials WHERE user_id {wanted}
UNION ALL SELECT 4, user_id, id, created_at, name, NULL, NULL, NULL, is_verified, NULL, NULL, NULL, NULL
  FROM totps WHERE user_id {wanted}
UNION ALL SELECT 5, user_id, id, created_at, phone, NULL, NULL, NULL, is_verified, NULL, NULL, NULL, NULL
  FROM otp_sms WHERE user_id {wanted}
UNION ALL SELECT 6, user_id, id, created_at, address, NULL, NULL, NULL, is_verified, NULL, NULL, NULL, NULL
  FROM otp_emails WHERE user_id {wanted}
UNION ALL SELECT 7, user_id, id, created_at, NULL, NULL, NULL, NULL, NULL, NULL, expiration_date, changed_at, sequence
  FROM authentication_keys WHERE user_id {wanted}
UNION ALL SELECT 8, user_id, id, created_at, idp_id, idp_name, external_user_id, external_username, NULL, NULL,
       NULL, NULL, NULL
  FROM idp_links WHERE user_id {wanted}
ORDER BY sort_at, id
"""


# --- The database ------------------------------------------------------------------------------

class Database:
    """Raw SQL on the benchmark's database: `?` parameters on both backends."""

    def __init__(self, url):
        self.url = url
        if url.startswith("postgres"):
            import psycopg2

            self.backend = "postgres"
            self.connection = psycopg2.connect(url)
            self.prepared = {}
            self.connection.set_session(isolation_level="REPEATABLE READ", readonly=True)
        elif url.startswith("sqlite:"):
            self.backend = "sqlite"
            path = urllib.parse.urlsplit(url)
            self.path = (path.netloc + path.path) if path.netloc else path.path
            self.connection = None
        else:
            raise SystemExit(f"--database-url: neither sqlite: nor postgres: {url}")

    def open(self):
        if self.backend == "sqlite" and self.connection is None:
            self.connection = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, isolation_level=None)

    def run(self, text, params=()):
        """Runs `text` with `?` parameters (or PostgreSQL's `$n`). PostgreSQL's statements are
        prepared once per text, as sqlite3 does by itself (its statement cache)."""
        cursor = self.connection.cursor()
        if self.backend == "sqlite":
            cursor.execute(text, list(params))
            self.columns = [column[0] for column in cursor.description or ()]
            return cursor.fetchall()
        name = self.prepared.get(text)
        if name is None:
            name = f"floor_{len(self.prepared)}"
            numbers = itertools.count(1)
            cursor.execute(f"PREPARE {name} AS " + re.sub(r"\?", lambda _: f"${next(numbers)}", text))
            self.prepared[text] = name
        arguments = f"({', '.join(['%s'] * len(params))})" if params else ""
        cursor.execute(f"EXECUTE {name}{arguments}", list(params))
        self.columns = [column[0] for column in cursor.description or ()]
        return cursor.fetchall()

    def authenticators(self, ids):
        if self.backend == "sqlite":
            cte = f"WITH wanted(user_id) AS (VALUES {', '.join(['(?)'] * len(ids))})"
            return self.run(AUTHENTICATORS.format(cte=cte, wanted="IN (SELECT user_id FROM wanted)"), ids)
        return self.run(AUTHENTICATORS.format(cte="", wanted="= ANY($1)"), [ids])

    def done(self):
        """Ends the read transaction of statements run outside `floor` (PostgreSQL's session is
        transactional; SQLite's connection commits each statement by itself)."""
        if self.backend == "postgres":
            self.connection.commit()

    def begin(self):
        if self.backend == "sqlite":
            self.connection.execute("BEGIN")

    def commit(self):
        if self.backend == "sqlite":
            self.connection.execute("COMMIT")
        else:
            self.connection.commit()

    def vacuum(self):
        """PostgreSQL: VACUUM (ANALYZE) the whole database, as autovacuum would have by now (it
        may be off, as on the benchmark machine): a fresh seed has no visibility map, so no
        index-only scans, and the role just given has no statistics."""
        if self.backend != "postgres":
            return
        import psycopg2

        connection = psycopg2.connect(self.url)
        connection.autocommit = True
        started = time.monotonic()
        connection.cursor().execute("VACUUM (ANALYZE)")
        connection.close()
        print(f"vacuumed and analyzed in {time.monotonic() - started:.1f} s", flush=True)

    def user_count(self):
        try:
            self.open()
            count = self.run("SELECT count(*) FROM users")[0][0]
        except Exception:
            count = 0
        if self.backend == "postgres":
            self.connection.rollback()
        elif self.connection is not None:
            self.connection.close()
            self.connection = None
        return count

    def floor(self, shape, p):
        """The same answer as the service by raw SQL in one read transaction: (total or None,
        page ids, authenticator rows)."""
        self.begin()
        params = shape.params_by_backend.get(self.backend, shape.params)(p)
        where = shape.where_by_backend.get(self.backend, shape.where)
        clause = f" WHERE {where}" if where else ""
        total = None
        if shape.call != "get":
            total = self.run(f"SELECT count(*), (SELECT max(sequence) FROM events) FROM users{clause}", params)[0][0]
        page = shape.page_by_backend.get(self.backend)
        page_params = params
        if page is None:
            seek = shape.seek_by_backend.get(self.backend, shape.seek)
            if seek:
                clause = f"{clause} AND {seek}" if clause else f" WHERE {seek}"
                page_params = list(params) + shape.seek_params(p)
            page = f"SELECT * FROM users{clause} ORDER BY {shape.order} LIMIT {shape.limit} OFFSET {shape.offset(p)}"
        rows = self.run(page, page_params)
        ids = [row[0] for row in rows]
        if "authenticators" in self.columns:
            # Each user's authenticators as one JSON document on its row (migration 13): the
            # page's rows hold them.
            slot = self.columns.index("authenticators")
            count = sum(len(json.loads(row[slot])) for row in rows if row[slot] is not None)
        else:
            count = len(self.authenticators(ids)) if ids else 0
        self.commit()
        return total, ids, count


# --- The service through Python grpcio and http.client ----------------------------------------

def load_stubs(scratch):
    from grpc_tools import protoc

    out = os.path.join(scratch, "stubs")
    os.makedirs(out)
    protos = [os.path.relpath(os.path.join(d, f), os.path.join(REPO, "proto"))
              for d, _, files in os.walk(os.path.join(REPO, "proto")) for f in files if f.endswith(".proto")]
    include = os.path.join(os.path.dirname(protoc.__file__), "_proto")
    code = protoc.main(["protoc", f"-I{os.path.join(REPO, 'proto')}", f"-I{include}",
                        f"--python_out={out}", f"--grpc_python_out={out}", *protos])
    if code != 0:
        raise SystemExit("grpc_tools.protoc failed")
    load_stubs_from(out)


def load_stubs_from(out):
    """Imports the stubs `load_stubs` generated into `out` (also in another process)."""
    global pb, grpc
    import grpc as grpc_module

    sys.path.insert(0, out)
    from userdir.user.v1 import (directory_service_pb2, directory_service_pb2_grpc, object_pb2, query_pb2,
                                 user_pb2, user_service_pb2, user_service_pb2_grpc)

    class Modules:
        pass

    pb = Modules()
    pb.user, pb.object, pb.query = user_pb2, object_pb2, query_pb2
    pb.user_service, pb.user_service_grpc = user_service_pb2, user_service_pb2_grpc
    pb.directory, pb.directory_grpc = directory_service_pb2, directory_service_pb2_grpc
    grpc = grpc_module


def authenticator_count(user):
    a = user.authenticators
    return (len(a.usernames) + int(a.HasField("password")) + len(a.web_auth_n) + len(a.totps) + len(a.otp_sms)
            + len(a.otp_email) + len(a.authentication_keys) + len(a.identity_providers))


class Service:
    def __init__(self, port, token):
        # Loopback only: no proxy from the environment.
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.enable_http_proxy", 0)])
        self.users = pb.user_service_grpc.UserServiceStub(self.channel)
        self.roles = pb.directory_grpc.RoleServiceStub(self.channel)
        self.metadata = [("authorization", f"Bearer {token}")]
        self.http = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.token = token

    def call(self, shape, request):
        """One call: (total or None, page ids, authenticator count)."""
        if shape.call == "logto":
            try:
                response = self.get(request)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # The server closes a keep-alive connection left idle past its idle timeout
                # (the floors of the shapes before ran meanwhile): open another, as any HTTP
                # client does.
                self.http.close()
                response = self.get(request)
            body = response.read()
            if response.status != 200:
                raise RuntimeError(f"{request}: {response.status} {body[:200]!r}")
            users = json.loads(body)
            return int(response.getheader("Total-Number")), [u["id"] for u in users], None
        if shape.call == "get":
            user = self.users.GetUser(request, metadata=self.metadata, timeout=120).user
            return None, [user.user_id], authenticator_count(user)
        method = self.roles.ListRoleUsers if shape.call == "role" else self.users.ListUsers
        response = method(request, metadata=self.metadata, timeout=120)
        return (response.details.total_result, [u.user_id for u in response.result],
                sum(authenticator_count(u) for u in response.result))

    def get(self, path):
        self.http.request("GET", path, headers={"authorization": f"Bearer {self.token}"})
        return self.http.getresponse()

    def close(self):
        self.channel.close()
        self.http.close()


def page_token_after(service, database, offset):
    """The token that the default-order page ending at `offset` answers, with the sort key of
    its last user (what the token's seek starts after)."""
    request = pb.user_service.ListUsersRequest(query=pb.object.ListQuery(offset=offset - 100, limit=100))
    response = service.users.ListUsers(request, metadata=service.metadata, timeout=120)
    last = response.result[-1].user_id
    created_at = database.run("SELECT created_at FROM users WHERE id = ?", [last])[0][0]
    database.done()
    return {"value": response.details.next_page_token, "id": last, "created_at": created_at}


def give_a_role(args, port, database):
    """A role held by --role-holders users spread over the directory, unless one exists: the
    seed makes none. Written through the API (AssignRole, 100 users a call) with an admin token
    minted for it."""
    if database.run("SELECT count(*) FROM roles")[0][0] > 0:
        database.done()
        return
    users = database.run("SELECT count(*) FROM users")[0][0]
    step = max(1, users // args.role_holders)
    ids = [row[0] for row in database.run("SELECT id FROM users ORDER BY id")][::step][:args.role_holders]
    database.done()
    admin = subprocess.run(
        [args.binary, "token", "create", "--admin", "--expires", "1h", "--description", "bench_floor.py roles",
         "--database-url", args.database_url], check=True, capture_output=True, text=True).stdout.strip()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.enable_http_proxy", 0)])
    roles = pb.directory_grpc.RoleServiceStub(channel)
    metadata = [("authorization", f"Bearer {admin}")]
    role_id = roles.CreateRole(pb.directory.CreateRoleRequest(name="bench support", description="bench_floor.py"),
                               metadata=metadata, timeout=60).role_id
    for start in range(0, len(ids), 100):
        roles.AssignRole(pb.directory.AssignRoleRequest(role_id=role_id, user_ids=ids[start:start + 100]),
                         metadata=metadata, timeout=60)
    channel.close()
    print(f"gave role {role_id} to {len(ids)} users", flush=True)


def timed(calls, warmup, function):
    for _ in range(warmup):
        function()
    latencies = []
    for _ in range(calls):
        started = time.perf_counter()
        function()
        latencies.append((time.perf_counter() - started) * 1000)
    latencies.sort()
    return latencies[len(latencies) // 2], latencies[min(len(latencies) - 1, int(len(latencies) * 0.95))]


# --- The server --------------------------------------------------------------------------------

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


def wait_until_serving(port, server, seconds=120):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"userdir serve exited with {server.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("userdir serve did not listen in time")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", default="target/release/userdir")
    parser.add_argument("--bench-binary", help="default: userdir-bench beside --binary")
    parser.add_argument("--database-url", required=True,
                        help="sqlite://PATH?mode=rwc or postgres://USER@HOST:PORT/DATABASE")
    parser.add_argument("--users", type=int, default=20_000, help="seed up to this many users")
    parser.add_argument("--calls", type=int, default=25, help="measured sequential calls per shape")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--role-holders", type=int, default=20_000,
                        help="when the directory has no role: create one and assign it to this many users "
                             "(every n-th user), so that the role users shape is measured")
    args = parser.parse_args()
    bench_binary = args.bench_binary or os.path.join(os.path.dirname(args.binary), "userdir-bench")

    scratch = tempfile.mkdtemp(prefix="userdir-bench-floor-")
    server = None
    try:
        load_stubs(scratch)
        database = Database(args.database_url)
        have = database.user_count()
        if have < args.users:
            print(f"seeding {args.users - have} users (the database has {have})", flush=True)
            started = time.monotonic()
            subprocess.run([args.binary, "seed", "--users", str(args.users - have),
                            "--database-url", args.database_url], check=True, stdout=subprocess.DEVNULL)
            print(f"seeded in {time.monotonic() - started:.0f} s", flush=True)
        else:
            print(f"reusing the database: {have} users", flush=True)
        database.open()

        port = free_port()
        token_file = os.path.join(scratch, "bootstrap.token")
        server = subprocess.Popen(
            [args.binary, "serve", "--listen", f"127.0.0.1:{port}", "--database-url", args.database_url,
             "--bootstrap-token-file", token_file, "--rate-limit-per-token", "0", "--rate-limit-per-peer", "0"],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(scratch, "serve.log"), "w"))
        wait_until_serving(port, server)
        if os.path.exists(token_file):
            token = open(token_file).read().strip()
        else:  # a directory that minted its bootstrap token before: a read-only one for this run
            token = subprocess.run(
                [args.binary, "token", "create", "--permissions", "user.read,org.read,role.read", "--expires", "12h",
                 "--description", "bench_floor.py", "--database-url", args.database_url],
                check=True, capture_output=True, text=True).stdout.strip()

        if args.role_holders > 0:
            give_a_role(args, port, database)
        database.vacuum()

        rust = subprocess.run(
            [bench_binary, "--target", f"127.0.0.1:{port}", "--json", "--concurrency", "1",
             "--requests", str(args.calls), "--warmup", str(args.warmup)],
            capture_output=True, text=True, env={**os.environ, "USERDIR_TOKEN": token})
        if rust.returncode != 0:
            raise SystemExit(f"{bench_binary} failed ({rust.returncode}): {rust.stderr.strip()}")
        report = json.loads(rust.stdout)
        picked = report["picked"]
        rust_p50 = {r["key"]: r["p50_ms"] for r in report["results"] if r["errors"] == 0}
        print("picked by userdir-bench from the server:", json.dumps(picked), flush=True)

        service = Service(port, token)
        picked["token"] = page_token_after(service, database, picked["offset"])
        rows = []
        for shape in shapes():
            if shape.key == "name_contains_ic" and not picked.get("name_infix"):
                continue
            if shape.key == "role_users" and not picked.get("role"):
                continue
            request = shape.request(picked)
            answer = service.call(shape, request)
            floor_answer = database.floor(shape, picked)
            same = answer[0] == floor_answer[0] and answer[1] == floor_answer[1] and (
                answer[2] is None or answer[2] == floor_answer[2])
            p50, p95 = timed(args.calls, args.warmup, lambda: service.call(shape, request))
            floor_p50, _ = timed(args.calls, args.warmup, lambda: database.floor(shape, picked))
            if shape.key == "first_page":
                FIRST_PAGE_P50["py"] = p50
            rows.append((shape, rust_p50.get(shape.key), p50, p95, floor_p50, same, floor_answer[0]))
        service.close()
        rss = peak_rss_mib(server.pid)

        print()
        print(f"{args.users if have < args.users else have} users, {database.backend}, p50/p95 of {args.calls} "
              f"sequential calls after {args.warmup} warm-up; ms")
        if database.backend == "sqlite":
            print(f"floor by SQLite {sqlite3.sqlite_version}")
        header = (f"{'shape':<18} {'matches':>8} {'rust p50':>9} {'py p50':>8} {'py p95':>8} {'floor p50':>9} "
                  f"{'py/floor':>8}  {'same':<4} {'target':<27} met")
        print(header)
        print("-" * len(header))
        for shape, rust_ms, p50, p95, floor_p50, same, total in rows:
            met = shape.target.met(p50, floor_p50, database.backend) if shape.target else None
            print(f"{shape.key:<18} {'' if total is None else total:>8} "
                  f"{'-' if rust_ms is None else f'{rust_ms:.2f}':>9} {p50:>8.2f} {p95:>8.2f} {floor_p50:>9.2f} "
                  f"{p50 / floor_p50 if floor_p50 else float('inf'):>7.1f}x  {'yes' if same else 'NO':<4} "
                  f"{shape.target.text if shape.target else '':<27} {'yes' if met else 'no'}")
        print(f"peak server RSS (VmHWM): {rss:.1f} MiB (target < 100 MiB: {'yes' if rss < 100 else 'no'})")
        if not all(row[5] for row in rows):
            print("the service and the floor disagree on a shape marked NO", file=sys.stderr)
            return 1
        return 0
    finally:
        if server is not None and server.poll() is None:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
