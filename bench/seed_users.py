#!/usr/bin/env python3
"""Bulk-inserts, into a Shomei SQLite database (server stopped), C companies
of U users each, every user with one certificate record, fast, in one
transaction: the help desk's search at the size of a regional bank.
Companies are 株式会社検索NNNNN, users sNNNNNuMM (login ID) named
検索 花子NNNNNMM. Prints, one a line as JSON, sample search texts the load
client asks for. Usage: seed_users.py DB COMPANIES USERS_PER_COMPANY"""

import json
import random
import sqlite3
import sys
import time

db, companies, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
c = sqlite3.connect(db)
c.execute("PRAGMA journal_mode=WAL")
c.execute("PRAGMA synchronous=OFF")
now = int(time.time())
rng = random.Random(24)
cur = c.cursor()
serials = []
for k in range(companies):
    cur.execute("INSERT INTO companies(name, service, created_at) VALUES (?, 'business_ib', ?)",
                (f"株式会社検索{k:05d}", now))
    company = cur.lastrowid
    for i in range(per):
        role = "master" if i == 0 else "general"
        cur.execute(
            "INSERT INTO users(company_id, login_id, name, role, email, login_hash, confirm_hash, created_at) "
            "VALUES (?, ?, ?, ?, '', 'x', 'x', ?)",
            (company, f"s{k:05d}u{i:02d}", f"検索 花子{k:05d}{i:02d}", role, now),
        )
        uid = cur.lastrowid
        serial = "%032x" % (rng.getrandbits(126) | (1 << 126))
        if rng.random() < 0.001:
            serials.append(serial)
        cur.execute(
            "INSERT INTO certificates(user_id, serial, not_before, not_after, der, issued_at) "
            "VALUES (?, ?, ?, ?, x'', ?)",
            (uid, serial, now - 86400, now + 86400 * 365, now),
        )
c.commit()
c.execute("ANALYZE")
c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
c.close()
print(json.dumps({"serials": serials}))
