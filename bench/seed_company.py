#!/usr/bin/env python3
"""Bulk-inserts, for an existing company of a Shomei database (server
stopped), N general users each with one certificate record and M 操作履歴
rows spread over the last year, fast, in one transaction. The rows are not
hash-chained (the benchmark reads them; `shomei audit verify` would flag
them). Usage: seed_company.py DB COMPANY_ID USERS AUDIT_ROWS"""

import random
import sqlite3
import sys
import time

db, company, users, rows = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
c = sqlite3.connect(db)
c.execute("PRAGMA journal_mode=WAL")
c.execute("PRAGMA synchronous=OFF")
now = int(time.time())
rng = random.Random(6)
cur = c.cursor()
ids = []
for i in range(users):
    cur.execute(
        "INSERT INTO users(company_id, login_id, name, role, email, login_hash, confirm_hash, created_at) "
        "VALUES (?, ?, ?, 'general', ?, 'x', 'x', ?)",
        (company, f"b{company:03d}u{i:06d}"[:12], f"利用者{i:05d}", f"u{i}@example.jp", now),
    )
    uid = cur.lastrowid
    ids.append(uid)
    serial = "%032x" % ((rng.getrandbits(126) | (1 << 126)))
    cur.execute(
        "INSERT INTO certificates(user_id, serial, not_before, not_after, der, issued_at) VALUES (?, ?, ?, ?, x'', ?)",
        (uid, serial, now - 86400 * rng.randint(1, 300), now + 86400 * rng.randint(1, 365), now),
    )
ops = ["ログイン", "ログアウト", "証明書失効", "パスワード変更", "利用者停止・解除", "利用者登録"]
batch = []
for i in range(rows):
    at = now - 86400 * 365 + i * (86400 * 365 // max(rows, 1))
    u = rng.randrange(users) if users else 0
    batch.append((at, company, ids[u] if users else None, f"b{company:03d}u{u:06d}"[:12], rng.choice(ops),
                  "", "成功" if rng.random() < 0.9 else "失敗", "", "127.0.0.1"))
    if len(batch) == 50000:
        cur.executemany(
            "INSERT INTO audit_log(chain, at, company_id, actor_user_id, actor_login_id, operation, target_login_id, "
            "result, detail, client_addr, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', '')", [(company,) + b for b in batch])
        batch.clear()
if batch:
    cur.executemany(
        "INSERT INTO audit_log(chain, at, company_id, actor_user_id, actor_login_id, operation, target_login_id, "
        "result, detail, client_addr, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', '')", [(company,) + b for b in batch])
# The per-company row count the history screen reads.
tables = [r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
if "audit_counts" in tables:
    c.execute("INSERT INTO audit_counts (chain, n) SELECT ?, count(*) FROM audit_log WHERE chain = ? "
              "ON CONFLICT(chain) DO UPDATE SET n = excluded.n", (company, company))
c.commit()
c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
c.close()
