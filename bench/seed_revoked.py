#!/usr/bin/env python3
"""Bulk-inserts N revoked and M unrevoked certificate records (no DER: they
need not be signed) for a new bench company's user into a Shomei database
(server stopped), fast, in one transaction.
Usage: seed_revoked.py DB N [M] [INDEX] [SERIALS]
INDEX (optional): appends the revoked entries in `openssl ca`'s index.txt
format (R lines), for `openssl ca -gencrl`, and the unrevoked ones as V lines,
for `openssl ocsp -index`. SERIALS (optional): appends up to 100,000 of the
new serials, chosen at random among revoked and unrevoked, one hex a line."""

import os
import random
import sqlite3
import sys
import time

db, n = sys.argv[1], int(sys.argv[2])
m = int(sys.argv[3]) if len(sys.argv) > 3 else 0
index = sys.argv[4] if len(sys.argv) > 4 and sys.argv[4] != "-" else None
serials_out = sys.argv[5] if len(sys.argv) > 5 else None
# The CRL partition a new certificate names (shomei_core::CrlScope::for_serial:
# the serial's last four octets modulo K), when the schema has partitions.
K = int(os.environ.get("SEED_CRL_PARTITIONS", "64"))
c = sqlite3.connect(db)
c.execute("PRAGMA journal_mode=WAL")
c.execute("PRAGMA synchronous=OFF")
now = int(time.time())
cur = c.cursor()
cur.execute("INSERT INTO companies(name, service, created_at) VALUES('ベンチ株式会社', 'business_ib', ?)", (now,))
company = cur.lastrowid
cols = [r[1] for r in c.execute("PRAGMA table_info(users)")]
values = {
    "company_id": company, "login_id": f"bench{company}", "name": "ベンチ", "role": "general",
    "email": "bench@example.jp", "login_hash": "x", "confirm_hash": "x", "created_at": now,
}
present = [k for k in values if k in cols]
cur.execute(f"INSERT INTO users({','.join(present)}) VALUES({','.join('?' for _ in present)})", [values[k] for k in present])
user = cur.lastrowid
rng = random.Random(5280 + company)
sample = []


def serial():
    b = bytearray(rng.getrandbits(8) for _ in range(16))
    b[0] = (b[0] & 0x7F) | 0x40
    return b.hex()


cert_cols = [r[1] for r in c.execute("PRAGMA table_info(certificates)")]
partitioned = "crl_partition" in cert_cols
names = "user_id, serial, not_before, not_after, der, issued_at, revoked_at, revocation_reason"
if partitioned:
    names += ", crl_partition"
insert = f"INSERT INTO certificates({names}) VALUES({','.join('?' for _ in names.split(','))})"
rows = []
out = open(index, "a") if index else None
for i in range(n + m):
    s = serial()
    revoked = i < n
    at = now - rng.randint(60, 86400 * 300)
    reason = rng.choice([1, 4, 5])
    row = [user, s, now - 86400 * 365, now + 86400 * 30, b"", now - 86400 * 365, at if revoked else None, reason if revoked else None]
    if partitioned:
        row.append(int(s[-8:], 16) % K if K else None)
    rows.append(row)
    expires = time.strftime("%y%m%d%H%M%SZ", time.gmtime(now + 86400 * 30))
    if out and revoked:
        t = time.strftime("%y%m%d%H%M%SZ", time.gmtime(at))
        reason_name = {1: "keyCompromise", 4: "superseded", 5: "cessationOfOperation"}[reason]
        out.write(f"R\t{expires}\t{t},{reason_name}\t{s.upper()}\tunknown\t/CN=bench{company}-{i}\n")
    elif out:
        out.write(f"V\t{expires}\t\t{s.upper()}\tunknown\t/CN=bench{company}-{i}\n")
    # Reservoir sample of the new serials.
    if len(sample) < 100000:
        sample.append(s)
    else:
        j = rng.randint(0, i)
        if j < 100000:
            sample[j] = s
    if len(rows) == 50000:
        cur.executemany(insert, rows)
        rows.clear()
if rows:
    cur.executemany(insert, rows)
c.commit()
c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
c.close()
if out:
    out.close()
if serials_out:
    with open(serials_out, "a") as f:
        f.write("".join(x + "\n" for x in sample))
