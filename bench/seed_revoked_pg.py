#!/usr/bin/env python3
"""Bulk-inserts N revoked certificate records (no DER: they need not be
signed) for a new bench company's user into a Shomei PostgreSQL database,
in one transaction, with generate_series (no rows cross the wire), servers
stopped. The PostgreSQL twin of seed_revoked.py: it reads the tables'
columns first and fills only those that exist, and stops with a message if
a NOT NULL column without a default appears that it does not know.

The revocation log (revocation_log / revocation_head) is left as it is: a
node that starts loads the whole revocation set from the certificates, and
reads the log only for what is committed after its start; in a database of
this age the log has been pruned (entries are kept an hour) anyway.
The table is vacuumed and analysed after, as an old one would be, so that
no autovacuum of the new rows runs into the measurements.

Usage: [SEED_CRL_PARTITIONS=K] seed_revoked_pg.py DATABASE_URL N   (K as the
server's crl_partitions, default 64; 0: all in the undivided CRL)
"""

import os
import subprocess
import sys
import time

url, n = sys.argv[1], int(sys.argv[2])


def psql(sql):
    r = subprocess.run(["psql", url, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-f", "-"], input=sql,
                       capture_output=True, text=True, timeout=1800)
    if r.returncode != 0:
        sys.exit(f"seed_revoked_pg: {r.stderr.strip()}")
    return r.stdout


def columns(table):
    """name -> (NOT NULL without default and not an identity)"""
    out = psql("SELECT column_name, is_nullable = 'NO' AND column_default IS NULL AND is_identity = 'NO' "
               f"FROM information_schema.columns WHERE table_name = '{table}' AND table_schema = current_schema()")
    return {c: req == "t" for c, req in (line.split("|") for line in out.splitlines())}


def insert(table, values, tail):
    """INSERT INTO table(cols) SELECT exprs `tail`, with the known columns that exist."""
    cols = columns(table)
    if not cols:
        sys.exit(f"seed_revoked_pg: no table {table} (start a server on the database once first)")
    unknown = [c for c, required in cols.items() if required and c not in values]
    if unknown:
        sys.exit(f"seed_revoked_pg: {table} has NOT NULL columns without a default this seed does not fill: "
                 f"{', '.join(unknown)}")
    present = [c for c in values if c in cols]
    return f"INSERT INTO {table}({','.join(present)}) SELECT {','.join(values[c] for c in present)} {tail}"


now = int(time.time())
company = insert("companies", {"name": "'ベンチ株式会社'", "service": "'business_ib'", "created_at": str(now)}, "")
user = insert("users", {
    "company_id": "c.id", "login_id": "'bench' || c.id", "name": "'ベンチ'", "role": "'general'",
    "email": "'bench@example.jp'", "login_hash": "'x'", "confirm_hash": "'x'", "created_at": str(now),
}, "FROM (SELECT :company AS id) c")
# Serials: 16 bytes, the first in 0x40..0x7f (positive, full length), like
# the server's; md5 of the row number and the company makes them distinct.
serial = "substr('4567', (i % 4)::int + 1, 1) || substr(md5(u.company_id || ':' || i), 2, 31)"
# The CRL partition a new certificate names (shomei_core::CrlScope::for_serial:
# the serial's last four octets modulo K), when the schema has partitions.
K = int(os.environ.get("SEED_CRL_PARTITIONS", "64"))
certs = insert("certificates", {
    "user_id": "u.id", "serial": "g.s", "not_before": str(now - 86400 * 365),
    "not_after": str(now + 86400 * 30), "der": "'\\x'::bytea", "issued_at": str(now - 86400 * 365),
    "revoked_at": f"{now} - 60 - (hashint4(i::int) & 2147483647) % (86400 * 300)",
    "revocation_reason": "(ARRAY[1, 4, 5])[(i % 3)::int + 1]",
    "crl_partition": f"('x' || right(g.s, 8))::bit(32)::bigint % {K}" if K else "NULL",
}, f"FROM (SELECT :user_id AS id, :company AS company_id) u CROSS JOIN LATERAL "
   f"(SELECT i, {serial} AS s FROM generate_series(1, {n}) AS i) g")
t0 = time.time()
psql(f"""BEGIN;
SET LOCAL synchronous_commit = off;
{company} RETURNING id AS company \\gset
{user} RETURNING id AS user_id \\gset
{certs};
COMMIT;
VACUUM (ANALYZE) certificates;""")
print(f"seeded {n} revoked certificates in {time.time() - t0:.0f} s", file=sys.stderr)
