#!/usr/bin/env python3
"""Times OPR010 利用者検索 for one help-desk operator over one keep-alive
HTTPS connection with the operator's client certificate: prefixes of a login
ID, a name, a company's name and a certificate serial (each a different one
every request), a company-name prefix that every user matches (page 1 and a
page deep in it), and the empty text (everyone). Prints p50 and p99 in
milliseconds beside the 50 ms target.
Usage: user_search_load.py CONSOLE ROOT_CA CERT_PEM KEY_PEM PASSWORD ROUNDS COMPANIES SAMPLES_JSON"""

import http.client
import json
import random
import re
import ssl
import sys
import time
import urllib.parse

console, root, cert, key, password, rounds, companies, samples = sys.argv[1:9]
rounds, companies = int(rounds), int(companies)
serials = json.loads(open(samples).read())["serials"]
host, port = urllib.parse.urlsplit(console).netloc.rsplit(":", 1)
ctx = ssl.create_default_context(cafile=root)
ctx.load_cert_chain(cert, key)
conn = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=60)
cookies = {}


def request(method, path, body=None):
    headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())} if cookies else {}
    if body is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    conn.request(method, path, body=body, headers=headers)
    r = conn.getresponse()
    data = r.read().decode()
    for k, v in r.getheaders():
        if k.lower() == "set-cookie":
            name, value = v.split(";", 1)[0].split("=", 1)
            cookies[name] = value
    return r.status, data


_, page = request("GET", "/opr000")
csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', page).group(1)
status, _ = request("POST", "/opr000", urllib.parse.urlencode({"csrf": csrf, "password": password}))
assert status == 303, status
rng = random.Random(26)
q = lambda text, page=1: "/opr010?" + urllib.parse.urlencode({"q": text, "page": page})
kinds = [
    ("login ID prefix (s01234u, 10 users)", lambda: q(f"s{rng.randrange(companies):05d}u")),
    ("name prefix (検索 花子01234, 10 users)", lambda: q(f"検索 花子{rng.randrange(companies):05d}")),
    ("company name prefix (株式会社検索0123, 100 users)", lambda: q(f"株式会社検索{rng.randrange(companies) // 10:04d}")),
    ("serial prefix (8 hex digits, 1 user)", lambda: q(rng.choice(serials)[:8])),
    ("a miss (zz…)", lambda: q(f"zz{rng.randrange(10**6)}")),
    ("every user's company (株式会社), page 1", lambda: q("株式会社")),
    ("every user's company (株式会社), page 2500", lambda: q("株式会社", 2500)),
    ("empty text (everyone), page 1", lambda: q("")),
]
target = 50.0
print(f"{'OPR010 search':<52} {'p50 ms':>8} {'p99 ms':>8} {'target':>8} {'hits':>8}")
worst = 0.0
for name, make in kinds:
    times = []
    hits = "?"
    for _ in range(rounds):
        path = make()
        t = time.perf_counter()
        status, body = request("GET", path)
        times.append((time.perf_counter() - t) * 1000)
        assert status == 200, (status, path, body[:500])
        m = re.search(r"(\d+)人中", body)
        hits = m.group(1) if m else "0"
    times.sort()
    p50 = times[len(times) // 2]
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    worst = max(worst, p99)
    print(f"{name:<52} {p50:8.1f} {p99:8.1f} {'< 50':>8} {hits:>8}")
print(f"worst p99: {worst:.1f} ms (target < {target:.0f} ms): {'met' if worst < target else 'NOT met'}")
