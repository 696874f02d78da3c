#!/usr/bin/env python3
"""Catch-up of node B after a cut from the database (bench/catch_up.sh
starts the nodes and the proxy). Cuts B (SIGUSR1 to the proxy), makes COUNT
revocations on A by EST renewal — 20 curl renewals of the sampled chain,
shomei-bench renewal bursts on the other chains (each burst goes on
from the certificates the last one wrote back), 20 curl renewals more —
lets B in again (SIGUSR2), and times from the proxy's reopening until
  - B's revocation set (gauge shomei_revoked_certificates) is A's,
  - B refuses the newest revoked certificate at the TLS handshake,
  - B's OCSP says revoked for it.
Then checks that B refuses every sampled revoked certificate at TLS and by
OCSP, and lets the sampled chain's current certificate in.

Usage: catch_up.py PROXY_PID PROXY_OUT A_CERT A_METRICS B_CERT B_PKI B_METRICS
       ROOT ISSUING COUNT WORKDIR SHOMEI_BENCH SAMPLE_PREFIX KEY:CERT...
"""

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

(PROXY, PROXY_OUT, A_CERT, A_METRICS, B_CERT, B_PKI, B_METRICS, ROOT, ISSUING, COUNT, WORK, LOAD,
 SAMPLE) = sys.argv[1:14]
CHAINS = sys.argv[14:]
COUNT, WORK = int(COUNT), Path(WORK)
SAMPLES = 20  # curl renewals before and after the bulk


def run(*args, **kw):
    return subprocess.run(list(args), capture_output=True, timeout=120, **kw)


def gauge(url, name="shomei_revoked_certificates", timeout=5.0):
    """The gauge, or None when /metrics does not answer within timeout (it
    counts the sessions in the database, so it waits while that is cut)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return int(re.search(rf"^{name} (\d+)", r.read().decode(), re.M).group(1))
    except OSError:
        return None


def proxy(sig, word):
    """Signals the proxy; returns the Unix time it reports the change done."""
    seen = Path(PROXY_OUT).read_text().count(word)
    os.kill(int(PROXY), sig)
    for _ in range(500):
        lines = [l for l in Path(PROXY_OUT).read_text().splitlines() if l.startswith(word)]
        if len(lines) > seen:
            return float(lines[-1].split()[1])
        time.sleep(0.01)
    sys.exit(f"proxy did not {word}")


def renew(key, crt, out):
    """One curl renewal on A with (key, crt); writes the new certificate to out."""
    csr = WORK / "sample.csr"
    if not csr.exists():
        run("openssl", "req", "-new", "-key", key, "-subj", "/CN=bench", "-outform", "DER", "-out", str(csr))
        (WORK / "sample.csr.b64").write_bytes(run("base64", "-w0", str(csr)).stdout)
    got = run("curl", "-sS", "--fail", "--cacert", ROOT, "--cert", crt, "--key", key,
              "-H", "Content-Type: application/pkcs10", "-H", "Content-Transfer-Encoding: base64",
              "--data-binary", f"@{WORK / 'sample.csr.b64'}", A_CERT + "/.well-known/est/simplereenroll")
    assert got.returncode == 0, got.stderr
    der = subprocess.run(["base64", "-d"], input=got.stdout.replace(b"\r", b""), capture_output=True).stdout
    pem = subprocess.run(["openssl", "pkcs7", "-inform", "DER", "-print_certs"], input=der,
                         capture_output=True).stdout
    Path(out).write_bytes(pem)


def tls_refused(key, crt):
    return run("curl", "-sS", "--cacert", ROOT, "--cert", crt, "--key", key, "-o", "/dev/null",
               B_CERT + "/cert-login").returncode != 0


def ocsp_status(crt):
    out = run("openssl", "ocsp", "-issuer", ISSUING, "-cert", crt, "-url", B_PKI + "/pki/ocsp",
              "-noverify").stdout.decode()
    m = re.search(r": (good|revoked|unknown)", out)
    return m.group(1) if m else "no answer"


def until(check, t_open, ceiling=30.0):
    """Seconds from t_open (Unix time) until check() holds, polled."""
    while not check():
        if time.time() - t_open > ceiling:
            return float("inf")
        time.sleep(0.002)
    return time.time() - t_open


key = SAMPLE + ".key"
chain = [SAMPLE + ".crt"]


def sample_renewals(n):
    for _ in range(n):
        nxt = str(WORK / f"sample{len(chain)}.crt")
        renew(key, chain[-1], nxt)
        chain.append(nxt)


assert not tls_refused(key, chain[0]), "B lets the sampled certificate in (the positive control)"
base_a, base_b = gauge(A_METRICS), gauge(B_METRICS)
assert base_a == base_b, (base_a, base_b)
t_cut = proxy(signal.SIGUSR1, "cut")
time.sleep(1)
t0 = time.time()
sample_renewals(SAMPLES)
bursts, rate = 0, 100.0  # renewals/s, from the last burst
while (left := COUNT - SAMPLES - (gauge(A_METRICS) - base_a)) > 0 and bursts < 100:
    # Bursts of whole seconds (shomei-bench's unit), the last one short.
    secs = max(1, min(5, round(left / rate)))
    out = run("taskset", "-c", "1", LOAD, "renew", ROOT, "127.0.0.1:" + A_CERT.rsplit(":", 1)[1], str(secs), *CHAINS)
    assert out.returncode == 0, out.stderr
    n, took = out.stdout.split()[:2]
    rate = max(1.0, int(n) / float(took))
    bursts += 1
sample_renewals(SAMPLES)
made = gauge(A_METRICS) - base_a
secs_made = time.time() - t0
t_cut_total = time.time() - t_cut
b_during = gauge(B_METRICS, timeout=2)
revoked = chain[:-1]  # each renewal revoked the one before; the last is current
newest = revoked[-1]

t_open = proxy(signal.SIGUSR2, "open")
target = base_b + made
t_set = until(lambda: (gauge(B_METRICS, timeout=0.5) or 0) >= target, t_open)
t_tls = until(lambda: tls_refused(key, newest), t_open)
t_ocsp = until(lambda: ocsp_status(newest) == "revoked", t_open)
tls_ok = sum(tls_refused(key, c) for c in revoked)
ocsp_ok = sum(ocsp_status(c) == "revoked" for c in revoked)
current_in = not tls_refused(key, chain[-1])

print(f"  {made} revocations made on A while B was cut ({secs_made:.0f} s of renewals, {made / secs_made:.0f}/s;"
      f" B cut for {t_cut_total:.0f} s in all)")
print("  B's /metrics during the cut: " + ("no answer within 2 s (it counts sessions in the database)"
      if b_during is None else f"its set held {b_during - base_b} of them"))
print(f"  {'after B is let in again':<52} {'measured':>10}   target")
for name, t, target_s in (("B's revocation set holds all of them (gauge)", t_set, "< 1 s"),
                          ("B refuses the newest at the TLS handshake", t_tls, "< 1 s"),
                          ("B's OCSP answers revoked for the newest", t_ocsp, "< 1 s")):
    print(f"  {name:<52} {t * 1e3:>8.0f}ms   {target_s}")
print(f"  sampled revoked certificates refused by B at TLS / by OCSP: {tls_ok} / {ocsp_ok} of {len(revoked)};"
      f" current certificate let in: {'yes' if current_in else 'NO'}")
print("  (each check is a new curl/openssl process, ~10-30 ms, included; the gauge is polled every few ms)")
