#!/usr/bin/env python3
"""Times `userdir import` of N generated users, beside a floor measured in the same run.

    scripts/import_bench.py --binary target/release/userdir --users 200000 \
        --database-url 'sqlite:///tmp/import-bench.db?mode=rwc'
    createdb -h 127.0.0.1 -U postgres import_bench
    scripts/import_bench.py --binary target/release/userdir --users 200000 \
        --database-url postgres://postgres@127.0.0.1:5432/import_bench

The database should be empty (the script refuses one with users). It creates the seed's fixed
organizations and schemas (`userdir seed --users 0`), writes a JSON Lines file of N employee
records (every one with a caller-chosen id, one or two usernames, a verified email, a phone, an
argon2id hash; every tenth with an IdP link), imports it, runs `userdir check` (counters exact)
and checks that the event log is gapless with one `user.created` per user. Then the floor: the
same user, username and event rows copied by the database itself (INSERT ... SELECT) into
empty tables with the same indexes, which is what the rows cost without any client, protocol,
validation or trigger. It prints the import's wall time, users per second, the importer's peak
RSS and the floor. Only the given database is touched; no network beyond it.
"""

import argparse
import json
import os
import re
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid

# A real argon2id hash of "seed-password" (the seed's), as an export from another directory
# would carry one.
HASH = "$argon2id$v=19$m=19456,t=2,p=1$sQ2kjOpMCWdrjg782AaUFA$0ccCTa2NfDJZDruxOvw0IKgQSaRJDnnpJxGsvQ5ehJE"
GIVEN = ["Ann", "Bob", "Chloé", "Dmitri", "Eva", "Farid", "Gigi", "Hiro", "Ines", "Jonas"]
FAMILY = ["Lee", "Müller", "Okafor", "Rossi", "Søndergaard", "Tanaka", "Ulrich", "Vargas"]
TABLES = ["users", "usernames", "events"]


def sql(url, statement):
    """Rows of one statement, as lists of strings."""
    if url.startswith("sqlite:"):
        path = re.sub(r"^sqlite:(//)?", "", url).split("?")[0]
        with sqlite3.connect(path) as db:
            return [[str(v) for v in row] for row in db.execute(statement).fetchall()]
    out = subprocess.run(
        ["psql", url, "-AtqX", "-F", "\t", "-c", statement],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [line.split("\t") for line in out.splitlines() if line]


def sqlite_path(url):
    return re.sub(r"^sqlite:(//)?", "", url).split("?")[0]


def records(n, organizations, schema):
    for i in range(n):
        given, family = GIVEN[i % len(GIVEN)], FAMILY[(i // 7) % len(FAMILY)]
        record = {
            "userId": str(uuid.UUID(int=(0x0190A3B1 << 96) | i, version=4)),
            "organizationId": organizations[i % len(organizations)],
            "schemaId": schema,
            "data": {"givenName": given, "familyName": family, "employeeNumber": 10000 + i},
            "usernames": [{"username": f"{given.lower()}.{family.lower()}.{i}"}],
            "contact": {
                "email": {"address": f"{given.lower()}.{family.lower()}{i}@example.com", "isVerified": True},
                "phone": {"number": f"+4179{i:07d}"},
            },
            "password": {"hash": HASH},
        }
        if i % 3 == 0:
            record["usernames"].append({"username": f"u{i}", "isOrganizationSpecific": True})
        if i % 10 == 0:
            record["idpLinks"] = [
                {"idpId": "github", "idpName": "GitHub", "linkedUserId": str(i), "linkedUsername": f"gh{i}"}
            ]
        yield json.dumps(record, ensure_ascii=False)


def floor(url):
    """Seconds the database takes to copy the imported rows of TABLES into empty copies."""
    total = 0.0
    if url.startswith("sqlite:"):
        db = sqlite3.connect(sqlite_path(url))
        for table in TABLES:
            db.execute(f"DROP TABLE IF EXISTS floor_{table}")
            create = db.execute(
                "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
            ).fetchone()[0]
            db.execute(re.sub(rf'"?{table}"?', f"floor_{table}", create, count=1))
            for (index,) in db.execute(
                "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL",
                (table,),
            ).fetchall():
                index = re.sub(r'INDEX\s+"?(\w+)"?', r'INDEX "floor_\1"', index, count=1)
                db.execute(re.sub(rf'ON\s+"?{table}"?', f'ON "floor_{table}"', index, count=1))
            db.commit()
            started = time.monotonic()
            db.execute(f"INSERT INTO floor_{table} SELECT * FROM {table}")
            db.commit()
            total += time.monotonic() - started
            db.execute(f"DROP TABLE floor_{table}")
            db.commit()
        db.close()
        return total
    for table in TABLES:
        sql(url, f"DROP TABLE IF EXISTS floor_{table}; CREATE TABLE floor_{table} (LIKE {table} INCLUDING ALL)")
        started = time.monotonic()
        sql(url, f"INSERT INTO floor_{table} SELECT * FROM {table}")
        total += time.monotonic() - started
        sql(url, f"DROP TABLE floor_{table}")
    return total


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", required=True)
    parser.add_argument("--users", type=int, required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--exclusive", action="store_true",
                        help="import with --exclusive (PostgreSQL: one transaction, indexes and "
                        "foreign keys built at the end)")
    args = parser.parse_args()
    env = dict(os.environ, DATABASE_URL=args.database_url)

    subprocess.run([args.binary, "seed", "--users", "0"], check=True, env=env, capture_output=True)
    if int(sql(args.database_url, "SELECT count(*) FROM users")[0][0]) != 0:
        sys.exit("the database already has users; give an empty one")
    organizations = [row[0] for row in sql(args.database_url, "SELECT id FROM organizations ORDER BY id")]
    schema = sql(args.database_url, "SELECT id FROM user_schemas WHERE type = 'employee'")[0][0]

    with tempfile.TemporaryDirectory() as scratch:
        path = os.path.join(scratch, "users.jsonl")
        with open(path, "w", encoding="utf-8") as out:
            for line in records(args.users, organizations, schema):
                out.write(line + "\n")
        command = [args.binary, "import", path]
        if args.batch_size:
            command += ["--batch-size", str(args.batch_size)]
        if args.exclusive:
            command.append("--exclusive")
        started = time.monotonic()
        result = subprocess.run(command, env=env, capture_output=True, text=True)
        elapsed = time.monotonic() - started
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if result.returncode != 0:
        sys.exit(f"import failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    check = subprocess.run([args.binary, "check"], env=env, capture_output=True, text=True)
    events = sql(args.database_url, "SELECT count(*), min(sequence), max(sequence), "
                 "sum(CASE WHEN event_type = 'user.created' THEN 1 ELSE 0 END) FROM events")[0]
    count, first, last, created = (int(v) for v in events)
    gapless = first == 1 and last == count and created == args.users
    floor_seconds = floor(args.database_url)

    backend = "sqlite" if args.database_url.startswith("sqlite:") else "postgres"
    print(f"{args.users} users, {backend}, batch size {args.batch_size or 'default'}"
          f"{', exclusive' if args.exclusive else ''}")
    print(f"import:  {elapsed:8.1f} s  {args.users / elapsed:10.0f} users/s  "
          f"peak RSS {peak_kib / 1024:.0f} MiB (of the importer and the seed before it)")
    print(f"floor:   {floor_seconds:8.1f} s  (INSERT ... SELECT of the same {', '.join(TABLES)} rows "
          f"into copies with the same indexes)")
    print(f"summary: {result.stdout.strip().splitlines()[-1]}")
    print(f"check:   {check.stdout.strip().splitlines()[-1] if check.stdout.strip() else check.stderr[-300:]}")
    print(f"events:  {count} (gapless from 1 with one user.created per user: {'yes' if gapless else 'NO'})")
    if check.returncode != 0 or not gapless:
        sys.exit(1)


if __name__ == "__main__":
    main()
