#!/usr/bin/env python3
"""The floods of "Hold under attack", at full size, against a running
Shomei (bench/attack.sh starts it on core 0; this runs on core 1). Prints each
figure beside its limit or reference. Loopback only; every loop is bounded.

Usage: attack.py PORTAL_URL PKI_URL METRICS_URL ROOT_PEM SERVER_PID USERS_PREFIX
       [FLOOD_REQUESTS] [CONCURRENT_LOGINS] [IDLE_CONNECTIONS]
"""

import asyncio
import json
import os
import re
import ssl
import statistics
import sys
import time
import urllib.parse

PORTAL, PKI, METRICS, ROOT, PID, PREFIX = sys.argv[1:7]
FLOOD = int(sys.argv[7]) if len(sys.argv) > 7 else 120_000
LOGINS = int(sys.argv[8]) if len(sys.argv) > 8 else 500
IDLE = int(sys.argv[9]) if len(sys.argv) > 9 else 20_000
PW = "Shomei#Demo1"

TLS = ssl.create_default_context(cafile=ROOT)


def hostport(url):
    u = urllib.parse.urlsplit(url)
    return "127.0.0.1", u.port


class Conn:
    """One keep-alive HTTP/1.1 connection (TLS unless plain)."""

    def __init__(self, url, local="127.0.0.1", tls=True):
        self.host, self.port = hostport(url)
        self.local, self.tls = local, tls
        self.r = self.w = None

    async def open(self):
        self.r, self.w = await asyncio.open_connection(
            self.host, self.port, ssl=TLS if self.tls else None,
            server_hostname="localhost" if self.tls else None,
            local_addr=(self.local, 0))
        return self

    async def request(self, method, path, headers=None, body=b""):
        if self.w is None:
            await self.open()
        h = {"Host": "localhost", "Content-Length": str(len(body))}
        h.update(headers or {})
        head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items())
        self.w.write(head.encode() + b"\r\n" + body)
        await self.w.drain()
        status_line = await self.r.readline()
        if not status_line:
            raise ConnectionError("closed")
        status = int(status_line.split()[1])
        hdrs = []
        while True:
            line = await self.r.readline()
            if line in (b"\r\n", b""):
                break
            k, _, v = line.decode("latin-1").partition(":")
            hdrs.append((k.strip().lower(), v.strip()))
        d = dict(hdrs)
        if d.get("transfer-encoding") == "chunked":
            data = b""
            while True:
                n = int((await self.r.readline()).strip(), 16)
                if n == 0:
                    await self.r.readline()
                    break
                data += await self.r.readexactly(n)
                await self.r.readline()
        else:
            data = await self.r.readexactly(int(d.get("content-length", "0")))
        return status, hdrs, data

    def close(self):
        if self.w:
            self.w.close()


def cookie(hdrs, name):
    for k, v in hdrs:
        if k == "set-cookie" and v.startswith(name + "="):
            return v.split(";")[0]
    return None


async def login(who, pw=PW, local="127.0.0.1", device=None, conn=None):
    """Logs in on a new connection (or `conn`, kept open): (outcome, seconds,
    session cookie, device cookie set). `device`: a device cookie to bring."""
    c = conn or Conn(PORTAL, local)
    t0 = time.perf_counter()
    try:
        _, hdrs, body = await c.request("GET", "/login")
        form = cookie(hdrs, "__Host-shomei-form")
        csrf = re.search(rb'name="csrf" value="([0-9a-f]+)"', body).group(1).decode()
        data = urllib.parse.urlencode({"csrf": csrf, "login_id": who, "password": pw}).encode()
        cookies = form + (f"; {device}" if device else "")
        st, hdrs, _ = await c.request("POST", "/login", {
            "Cookie": cookies, "Content-Type": "application/x-www-form-urlencoded"}, data)
        dt = time.perf_counter() - t0
        if st == 303 and dict(hdrs).get("location") == "/top":
            return "ok", dt, cookie(hdrs, "__Host-shomei"), cookie(hdrs, "__Host-shomei-device")
        return ("busy" if st == 503 else "refused"), dt, None, None
    except (OSError, ConnectionError, asyncio.IncompleteReadError):
        if conn:
            conn.close()
            conn.w = None
        return "error", time.perf_counter() - t0, None, None
    finally:
        if not conn:
            c.close()


async def metric(name):
    c = Conn(METRICS, tls=False)
    try:
        _, _, body = await c.request("GET", "/metrics")
    finally:
        c.close()
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def rss():
    vals = {}
    with open(f"/proc/{PID}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                vals[k] = int(v.split()[0]) // 1024
    return vals["VmRSS"], vals["VmHWM"]


def cpu_seconds():
    with open(f"/proc/{PID}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / 100


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] if xs else float("nan")


def row(what, measured, limit):
    print(f"  {what:<58} {measured:>14}   {limit}")


async def normal_logins_during(task, local):
    """p50/p99 of one normal client's logins while `task` runs."""
    times = []
    while not task.done():
        out, dt, _, _ = await login(f"{PREFIX}0000", local=local)
        if out == "ok":
            times.append(dt)
        await asyncio.sleep(0.05)
    await task
    return times


async def flood_anonymous():
    print("\n1. Anonymous flood: cookieless GET /login, 64 keep-alive connections")
    sessions = []
    for i in range(5):
        for who in ("hanakodt", "tarodt", "hottojr01", "hottojr02"):
            out, _, s, _ = await login(who, local="127.0.0.5")
            if out == "ok":
                sessions.append(s)
    rss0, _ = rss()

    async def worker(n):
        c = Conn(PORTAL)
        for _ in range(n):
            st, _, _ = await c.request("GET", "/login")
            assert st == 200
        c.close()

    t0 = time.perf_counter()
    flood = asyncio.ensure_future(asyncio.gather(*[worker(FLOOD // 64) for _ in range(64)]))
    times = await normal_logins_during(flood, "127.0.0.6")
    secs = time.perf_counter() - t0
    alive = 0
    for s in sessions:
        c = Conn(PORTAL, "127.0.0.5")
        st, hdrs, _ = await c.request("GET", "/top", {"Cookie": s})
        c.close()
        alive += st == 200
    rss1, _ = rss()
    row("requests / seconds", f"{FLOOD // 64 * 64} / {secs:.1f}", "")
    row("logged-in sessions alive after the flood", f"{alive}/{len(sessions)}", f"limit: all ({len(sessions)})")
    row("server sessions held (metric)", f"{await metric('shomei_sessions'):.0f}", "anonymous visitors hold none")
    row("RSS before / after (MB)", f"{rss0} / {rss1}", "bounded")
    row("normal login during the flood p50 / p99 (ms)",
        f"{pct(times, .5) * 1e3:.0f} / {pct(times, .99) * 1e3:.0f}", f"{len(times)} logins")


async def guesses():
    print("\n2. Concurrent guesses")
    before = await metric("shomei_password_hashes_total")
    who = f"{PREFIX}0001"
    results = await asyncio.gather(*[
        login(who, PW if i == 19 else "Wrong#Guess1", local="127.0.0.3") for i in range(40)])
    checks = await metric("shomei_password_hashes_total") - before
    ok = sum(1 for r in results if r[0] == "ok")
    row("40 at once for one user (1 right): passwords checked", f"{checks:.0f}", "lockout: 3")
    row("  the right one logged in", "yes" if ok else "no (lock closed first)", "allowed only with < 3 failures")
    before = await metric("shomei_password_hashes_total")
    results = await asyncio.gather(*[
        login(f"spray{i:04d}", "Spray#2026", local="127.0.0.4") for i in range(300)])
    checks = await metric("shomei_password_hashes_total") - before
    refused = sum(1 for r in results if r[0] == "refused")
    busy = sum(1 for r in results if r[0] == "busy")
    closed = sum(1 for r in results if r[0] == "error")
    row("300 at once from one address: passwords checked", f"{checks:.0f}", "address limit: 50")
    row("  refused page / busy (503) / closed (256 per address)", f"{refused} / {busy} / {closed}", "")


async def concurrent_logins():
    print(f"\n3. {LOGINS} concurrent logins of distinct users (25 per source address)")
    workers = await metric("shomei_password_hashing_workers")
    places = await metric("shomei_password_hashing_places")
    rss0, _ = rss()
    cpu0 = cpu_seconds()
    t0 = time.perf_counter()
    burst = asyncio.ensure_future(asyncio.gather(*[
        login(f"{PREFIX}{i + 10:04d}", local=f"127.0.1.{i // 25 + 1}") for i in range(LOGINS)]))
    times = await normal_logins_during(burst, "127.0.0.7")
    results = burst.result()
    secs = time.perf_counter() - t0
    cpu = cpu_seconds() - cpu0
    ok = sum(1 for r in results if r[0] == "ok")
    busy = sum(1 for r in results if r[0] == "busy")
    await asyncio.sleep(2)
    rss1, hwm = rss()
    row("hashing workers / places", f"{workers:.0f} / {places:.0f}", "workers = cores of the server")
    row("logged in / busy (503 Retry-After) / other", f"{ok} / {busy} / {LOGINS - ok - busy}", "")
    row("peak RSS (MB)", f"{hwm}", "target <= 300")
    row("RSS before / after the burst (MB)", f"{rss0} / {rss1}", "back near idle")
    row("logins/s during the burst", f"{ok / secs:.1f}", "")
    row("server CPU seconds per login", f"{cpu / max(ok, 1) * 1e3:.1f} ms", "")
    row("normal login during the burst p50 / p99 (ms)",
        f"{pct(times, .5) * 1e3:.0f} / {pct(times, .99) * 1e3:.0f}", f"{len(times)} logins")
    return ok / secs, workers


async def sustained_logins(secs=10, clients=64):
    """Logins/s at saturation: `clients` keep-alive connections (64 source
    addresses) each logging distinct users in again and again; a busy
    answer waits 20 ms and tries again."""
    done = 0
    hashes0 = await metric("shomei_password_hashes_total")
    cpu0 = cpu_seconds()
    until = time.perf_counter() + secs

    async def client(i):
        nonlocal done
        c = Conn(PORTAL, f"127.0.2.{i + 1}")
        n = 0
        while time.perf_counter() < until:
            who = f"{PREFIX}{(i * 7 + n) % LOGINS + 10:04d}"
            n += 1
            _, hdrs, body = await c.request("GET", "/login")
            form = cookie(hdrs, "__Host-shomei-form")
            token = re.search(rb'name="csrf" value="([0-9a-f]+)"', body).group(1).decode()
            data = urllib.parse.urlencode({"csrf": token, "login_id": who, "password": PW}).encode()
            st, _, _ = await c.request("POST", "/login", {
                "Cookie": form, "Content-Type": "application/x-www-form-urlencoded"}, data)
            if st == 303:
                done += 1
            else:
                await asyncio.sleep(0.02)
        c.close()

    t0 = time.perf_counter()
    await asyncio.gather(*[client(i) for i in range(clients)])
    secs = time.perf_counter() - t0
    hashes = await metric("shomei_password_hashes_total") - hashes0
    cpu = cpu_seconds() - cpu0
    row(f"sustained: {clients} keep-alive clients, logins/s", f"{done / secs:.1f}", "")
    row("  Argon2 hashes/s in the server / server CPU (% of a core)",
        f"{hashes / secs:.1f} / {cpu / secs * 100:.0f}%", "")
    return done / secs


async def idle_connections():
    print(f"\n4. {IDLE} idle or half-sent connections from 127.0.0.1 (portal, PKI)")
    held = []
    half = b"GET /login HTTP/1.1\r\nHost: localhost\r\n"
    opened = refused = 0
    for i in range(IDLE):
        url = PORTAL if i % 2 == 0 else PKI
        try:
            r, w = await asyncio.open_connection(*hostport(url), local_addr=("127.0.0.1", 0))
            if i % 4 == 1:
                w.write(half)
            held.append(w)
            opened += 1
        except OSError:
            refused += 1
    await asyncio.sleep(1)
    # What holding them costs: the server's CPU over 3 quiet seconds.
    cpu0 = cpu_seconds()
    await asyncio.sleep(3)
    idle_cpu = (cpu_seconds() - cpu0) / 3
    lat = []
    for _ in range(20):
        s = time.perf_counter()
        out, _, _, _ = await login("hanakodt", local="127.0.0.8")
        c = Conn(PKI, "127.0.0.8", tls=False)
        st, _, crl = await c.request("GET", "/pki/crl/0")
        c.close()
        assert out == "ok" and st == 200, (out, st)
        lat.append(time.perf_counter() - s)
    open_portal = await metric('shomei_connections_open{listener="portal"}')
    refused_m = await metric('shomei_connections_refused_total{listener="portal",reason="address_full"}')
    row("connections the client opened (TCP) / failed", f"{opened} / {refused}", "")
    row("portal connections the server holds", f"{open_portal:.0f}", "cap per address: 256")
    row("portal connections closed at once (address cap)", f"{refused_m:.0f}", "")
    row("login + CRL from 127.0.0.8 p50 / p99 (ms)",
        f"{pct(lat, .5) * 1e3:.0f} / {pct(lat, .99) * 1e3:.0f}", "target < 1000")
    row("server CPU while they are held, 3 quiet s (% of one core)", f"{idle_cpu * 100:.1f}%", "no spinning")
    for w in held:
        w.close()


async def returning_customer(flooders=500, addresses=100, series=20):
    """A returning customer (device cookie) logging in one at a time from
    127.0.0.200, idle and during a flood of wrong-password logins from
    `flooders` clients over 127.0.0.2.. (`addresses` of them; each retries
    its own user's wrong password until the series is done, 20 ms after a
    busy answer); then the same without the cookie."""
    print(f"\n6. A returning customer under a login flood: {flooders} concurrent wrong-password "
          f"logins from 127.0.0.2-127.0.0.{addresses + 1}, {series} logins one at a time from 127.0.0.200")
    who = f"{PREFIX}0002"
    out, _, _, device = await login(who, local="127.0.0.200")
    assert out == "ok" and device, (out, device)

    async def one_series(dev):
        # In a process of its own, as the customer's browser is on a
        # machine of its own: timed inside this one, the series would wait
        # on the flood's 500 clients sharing this event loop and core, and
        # the client's own queue would be counted as the server's.
        # SERIES_IN_LOOP=1 times it in the flood's loop, as this bench did
        # before, to compare.
        if os.environ.get("SERIES_IN_LOOP") == "1":
            return await series_alone(who, series, dev)
        env = dict(os.environ, ATTACK_SERIES=f"{who} {series}", ATTACK_DEVICE=dev or "")
        p = await asyncio.create_subprocess_exec(
            sys.executable, "-u", os.path.abspath(__file__), *sys.argv[1:],
            env=env, stdout=asyncio.subprocess.PIPE)
        out, _ = await p.communicate()
        assert p.returncode == 0, p.returncode
        got = json.loads(out)
        return got["times"], got["outs"]

    idle, idle_outs = await one_series(device)
    assert all(o == "ok" for o in idle_outs), idle_outs
    rss0, _ = rss()

    async def flood_during(dev):
        stop = asyncio.Event()
        tried = {"busy": 0, "refused": 0, "ok": 0, "error": 0}

        async def flooder(i):
            c = Conn(PORTAL, f"127.0.0.{i % addresses + 2}")
            target = f"{PREFIX}{(i % LOGINS) + 10:04d}"
            deadline = time.perf_counter() + 120
            while not stop.is_set() and time.perf_counter() < deadline:
                out, _, _, _ = await login(target, "Wrong#Guess1", conn=c)
                tried[out] += 1
                if out in ("busy", "error"):
                    await asyncio.sleep(0.02)
            c.close()

        flood = [asyncio.ensure_future(flooder(i)) for i in range(flooders)]
        await asyncio.sleep(1.0)  # the flood is on before the series starts
        t0 = time.perf_counter()
        times, outs = await one_series(dev)
        secs = time.perf_counter() - t0
        stop.set()
        await asyncio.gather(*flood)
        return times, outs, secs, tried

    h0 = await metric("shomei_password_hashes_total")
    with_cookie, outs, secs, tried = await flood_during(device)
    h1 = await metric("shomei_password_hashes_total")
    _, hwm = rss()
    without, outs_without, secs_without, tried_without = await flood_during(None)
    ok = sum(o == "ok" for o in outs)
    p99_idle = pct(idle, .99)
    p99 = pct(with_cookie, .99)
    row("returning customer, idle server: p50 / p99 (ms)",
        f"{pct(idle, .5) * 1e3:.0f} / {p99_idle * 1e3:.0f}", f"{len(idle)} logins")
    row("  during the flood, with the device cookie: logged in",
        f"{ok}/{series}", "target: all")
    row("  during the flood, with the device cookie: p50 / p99 (ms)",
        f"{pct(with_cookie, .5) * 1e3:.0f} / {p99 * 1e3:.0f}",
        f"p99 / idle p99 {p99 / p99_idle:.2f} (target <= 2)")
    row("  flood meanwhile: busy / refused / other answers",
        f"{tried['busy']} / {tried['refused']} / {tried['ok'] + tried['error']}",
        f"{(h1 - h0) / secs:.0f} hashes/s")
    ok_without = sum(o == "ok" for o in outs_without)
    busy_without = sum(o == "busy" for o in outs_without)
    row("  the same customer without the cookie: logged in / busy",
        f"{ok_without} / {busy_without}", f"of {series}")
    row("  without the cookie: p50 / p99 of those logged in (ms)",
        f"{pct(without, .5) * 1e3:.0f} / {pct(without, .99) * 1e3:.0f}" if without else "-",
        f"series took {secs_without:.1f} s (with the cookie {secs:.1f} s)")
    row("RSS before / peak during the flood (MB)", f"{rss0} / {hwm}", "bounded ((workers + 1) x 19 MiB)")


async def series_alone(who, n, device):
    """One customer's `n` logins one at a time from 127.0.0.200, each on a
    new connection: (seconds of those that got in, every outcome)."""
    times, outs = [], []
    for _ in range(n):
        out, dt, _, _ = await login(who, local="127.0.0.200", device=device or None)
        outs.append(out)
        if out == "ok":
            times.append(dt)
    return times, outs


# SECTIONS (default "1 2 3 4 6"): the sections run, e.g. SECTIONS=6 for the
# returning customer alone (section 5, the hashing rate, needs 3).
SECTIONS = os.environ.get("SECTIONS", "1 2 3 4 6").split()


async def main():
    rate, workers = 0.0, 0
    if "1" in SECTIONS:
        await flood_anonymous()
    if "2" in SECTIONS:
        await guesses()
    if "3" in SECTIONS:
        _, workers = await concurrent_logins()
        rate = await sustained_logins()
    if "4" in SECTIONS:
        await idle_connections()
    # Last: its flood locks the flooded users for a while.
    if "6" in SECTIONS:
        await returning_customer()
    return rate, workers


if __name__ == "__main__":
    if os.environ.get("ATTACK_SERIES"):
        who, n = os.environ["ATTACK_SERIES"].split()
        times, outs = asyncio.run(series_alone(who, int(n), os.environ.get("ATTACK_DEVICE")))
        print(json.dumps({"times": times, "outs": outs}))
        sys.exit(0)
    rate, workers = asyncio.run(main())
    print(f"RATE {rate:.2f} {workers:.0f}")
