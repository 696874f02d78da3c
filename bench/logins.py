#!/usr/bin/env python3
"""N password logins against a running Shomei portal (bench/pg_vs_sqlite.sh
measures the server's CPU around it): CLIENTS keep-alive connections, each
from its own loopback address, each taking the next user in turn (GET
/login for the form, POST /login); a busy answer (503) waits 20 ms and tries
again. Every other answer than 303 to /top ends the run with an error.
Prints "logins seconds busy_answers". Loopback only; bounded.

Usage: logins.py PORTAL_URL ROOT_PEM N CLIENTS USER...
"""

import asyncio
import re
import ssl
import sys
import time
import urllib.parse

PORTAL, ROOT, N, CLIENTS = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
USERS = sys.argv[5:]
PW = "Shomei#Demo1"
TLS = ssl.create_default_context(cafile=ROOT)
PORT = urllib.parse.urlsplit(PORTAL).port


async def request(r, w, method, path, headers, body=b""):
    h = {"Host": "localhost", "Content-Length": str(len(body)), **headers}
    w.write(f"{method} {path} HTTP/1.1\r\n".encode()
            + "".join(f"{k}: {v}\r\n" for k, v in h.items()).encode() + b"\r\n" + body)
    await w.drain()
    status = int((await r.readline()).split()[1])
    hdrs = []
    while (line := await r.readline()) not in (b"\r\n", b""):
        k, _, v = line.decode("latin-1").partition(":")
        hdrs.append((k.strip().lower(), v.strip()))
    size = int(dict(hdrs).get("content-length", "0"))
    return status, hdrs, await r.readexactly(size)


def cookie(hdrs, name):
    return next((v.split(";")[0] for k, v in hdrs if k == "set-cookie" and v.startswith(name + "=")), None)


async def main():
    left, busy = [N], [0]
    deadline = time.perf_counter() + 600

    async def client(i):
        r, w = await asyncio.open_connection("127.0.0.1", PORT, ssl=TLS, server_hostname="localhost",
                                             local_addr=(f"127.0.3.{i + 1}", 0))
        n = 0
        while left[0] > 0 and time.perf_counter() < deadline:
            left[0] -= 1
            who = USERS[(i + n * CLIENTS) % len(USERS)]
            n += 1
            while True:
                _, hdrs, body = await request(r, w, "GET", "/login", {})
                form = cookie(hdrs, "__Host-shomei-form")
                token = re.search(rb'name="csrf" value="([0-9a-f]+)"', body).group(1).decode()
                data = urllib.parse.urlencode({"csrf": token, "login_id": who, "password": PW}).encode()
                st, hdrs, _ = await request(r, w, "POST", "/login", {
                    "Cookie": form, "Content-Type": "application/x-www-form-urlencoded"}, data)
                if st != 503:
                    break
                busy[0] += 1
                await asyncio.sleep(0.02)
            if st != 303 or dict(hdrs).get("location") != "/top":
                sys.exit(f"login of {who} answered {st} {dict(hdrs).get('location')}")
        w.close()

    t0 = time.perf_counter()
    await asyncio.gather(*[client(i) for i in range(CLIENTS)])
    print(N - max(left[0], 0), f"{time.perf_counter() - t0:.3f}", busy[0])


asyncio.run(main())
