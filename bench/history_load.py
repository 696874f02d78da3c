#!/usr/bin/env python3
"""Times the portal's list screens for one logged-in administrator over one
keep-alive HTTPS connection on loopback: BRSK018 (利用者一覧 for 証明書失効)
and 操作履歴照会 (first page, a filtered page, the last page). Prints p50 and
p99 in milliseconds. Usage: history_load.py PORTAL ROOT_CA LOGIN_ID ROUNDS"""

import http.client
import re
import ssl
import sys
import time
import urllib.parse

portal, root, login_id, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
host, port = urllib.parse.urlsplit(portal).netloc.rsplit(":", 1)
ctx = ssl.create_default_context(cafile=root)
conn = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=60)
cookie = ""


def request(method, path, body=None):
    global cookie
    headers = {"Cookie": cookie} if cookie else {}
    if body is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    conn.request(method, path, body=body, headers=headers)
    r = conn.getresponse()
    data = r.read().decode()
    for k, v in r.getheaders():
        if k.lower() == "set-cookie":
            cookie = v.split(";", 1)[0]
    return r.status, data


_, page = request("GET", "/login")
csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', page).group(1)
status, _ = request("POST", "/login", urllib.parse.urlencode(
    {"csrf": csrf, "login_id": login_id, "password": "Shomei#Demo1"}))
assert status in (200, 303), status
_, first = request("GET", "/bssk011")
pages = int(re.search(r"（\d+ / (\d+)ページ）", first).group(1))
screens = [
    ("BRSK018 利用者一覧 (all users)", "/brsk018"),
    ("操作履歴照会, first page", "/bssk011"),
    ("操作履歴照会, filtered (証明書失効, 失敗)", "/bssk011?" + urllib.parse.urlencode({"op": "証明書失効", "result": "失敗"})),
    (f"操作履歴照会, last page ({pages})", f"/bssk011?page={pages}"),
]
print(f"{'screen':<44} {'p50 ms':>8} {'p99 ms':>8} {'bytes':>9}")
for name, path in screens:
    times = []
    size = 0
    for _ in range(rounds):
        t = time.perf_counter()
        status, body = request("GET", path)
        times.append((time.perf_counter() - t) * 1000)
        assert status == 200, (path, status)
        size = len(body.encode())
    times.sort()
    p = lambda q: times[min(len(times) - 1, int(round(q * (len(times) - 1))))]
    print(f"{name:<44} {p(0.50):>8.1f} {p(0.99):>8.1f} {size:>9}")
