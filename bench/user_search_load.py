#!/usr/bin/env python3
"""Times OPR010 利用者検索 for one help-desk operator over one keep-alive
HTTPS connection with the operator's client certificate: prefixes of a login
ID, a name, a company's name and a certificate serial (each a different one
every request), a company-name prefix that every user matches (page 1, then
its 次へ links followed page after page 2,500 pages deep, then its 前へ links
back), the empty text (everyone, page 1 and 次へ), and a search counted past
the cap whose users all come early in login-ID order asked for the page after
its last user (the most a page reads). Prints p50 and p99 in milliseconds
beside the 50 ms target, and the hits as the screen counts them (up to the
cap, then 「1,000件以上」).
Usage: user_search_load.py CONSOLE ROOT_CA CERT_PEM KEY_PEM PASSWORD ROUNDS COMPANIES SAMPLES_JSON [USERS_PER_COMPANY]"""

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
per = int(sys.argv[9]) if len(sys.argv) > 9 else 10
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
q = lambda text, **key: "/opr010?" + urllib.parse.urlencode({"q": text, **key})


def link(body, rel):
    m = re.search(r'<a href="([^"]*)" id="%s">' % rel, body)
    return m.group(1).replace("&amp;", "&") if m else None


def walker(first, rel, start=None):
    """The paths one after another by the page's `rel` link (next/prev),
    from `start` (or `first`), back to `first` when a page has none."""
    state = {"path": start or first}

    def make():
        return state["path"]

    def seen(body):
        state["path"] = link(body, rel) or first

    return make, seen


def deep(text, pages):
    """The path `pages` 次へ links into the search for `text` (not timed)."""
    path = q(text)
    for _ in range(pages):
        _, body = request("GET", path)
        nxt = link(body, "next")
        if not nxt:
            break
        path = nxt
    return path


walk_all = walker(q("株式会社"), "next")
walk_empty = walker(q(""), "next")
deep_path = deep("株式会社", 2500)
walk_back = walker(q("株式会社"), "prev", deep_path)
kinds = [
    ("login ID prefix (s01234u, 10 users)", lambda: q(f"s{rng.randrange(companies):05d}u"), None),
    ("name prefix (検索 花子01234, 10 users)", lambda: q(f"検索 花子{rng.randrange(companies):05d}"), None),
    ("company name prefix (株式会社検索0123, 100 users)", lambda: q(f"株式会社検索{rng.randrange(companies) // 10:04d}"), None),
    ("serial prefix (8 hex digits, 1 user)", lambda: q(rng.choice(serials)[:8]), None),
    ("a miss (zz…)", lambda: q(f"zz{rng.randrange(10**6)}"), None),
    ("every user's company (株式会社), page 1", lambda: q("株式会社"), None),
    ("株式会社, 次へ page after page from page 1", walk_all[0], walk_all[1]),
    ("株式会社, 前へ page after page from page 2501", walk_back[0], walk_back[1]),
    ("empty text (everyone), page 1", lambda: q(""), None),
    ("empty text, 次へ page after page from page 1", walk_empty[0], walk_empty[1]),
    # s00: the 10,000 users of the first 1,000 companies, all before s01:
    # the page after its last user reads the rest of the login-ID index.
    ("s00 (10,000 users) past its last user (worst)", lambda: q("s00", after=f"s00999u{per - 1:02d}", page=501), None),
]
target = 50.0
print(f"{'OPR010 search':<52} {'p50 ms':>8} {'p99 ms':>8} {'target':>8} {'hits':>8}")
worst = 0.0
for name, make, seen in kinds:
    times = []
    hits = "?"
    for _ in range(rounds):
        path = make()
        t = time.perf_counter()
        status, body = request("GET", path)
        times.append((time.perf_counter() - t) * 1000)
        assert status == 200, (status, path, body[:500])
        if seen:
            seen(body)
        m = re.search(r"(\d+)人中|([\d,]+件以上)", body)
        hits = (m.group(1) or m.group(2)) if m else "0"
    times.sort()
    p50 = times[len(times) // 2]
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    worst = max(worst, p99)
    print(f"{name:<52} {p50:8.1f} {p99:8.1f} {'< 50':>8} {hits:>8}")
print(f"worst p99: {worst:.1f} ms (target < {target:.0f} ms): {'met' if worst < target else 'NOT met'}")
