#!/usr/bin/env python3
"""Revocation on node A → enforced on node B, two `shomei serve` on one
PostgreSQL (bench/two_nodes.sh starts them). Each round enrolls sachikodt on
A over EST, revokes the certificate on A (the portal's 実行, as hanakodt),
and from the moment 実行 returns polls node B until its certificate
listener refuses the certificate (TLS), its OCSP says revoked, the delta
CRL its Freshest CRL extension names lists the serial (when it names one),
and the CRL named in its own CRL distribution point lists it (each URL's
path asked of B's PKI listener). Prints p50/p99 of each over the rounds.
REVOKED: how many revocations the database held before (for the heading).

Usage: two_nodes.py A_PORTAL B_CERT B_PKI ROOT ISSUING ROUNDS WORKDIR [REVOKED]
"""

import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

A, B_CERT, B_PKI, ROOT, ISSUING, ROUNDS, WORK = sys.argv[1:8]
ROUNDS = int(ROUNDS)
REVOKED = int(sys.argv[8]) if len(sys.argv) > 8 else 0
WORK = Path(WORK)
PW, CONFIRM = "Shomei#Demo1", "Shomei#Kakunin1"


def run(*args, **kw):
    return subprocess.run(list(args), capture_output=True, timeout=60, **kw)


def curl(*args):
    return run("curl", "-sS", "--cacert", ROOT, *args)


def csrf(body):
    return re.search(rb'name="csrf" value="([0-9a-f]{64})"', body).group(1).decode()


def enroll(who):
    key, csr, crt = (WORK / f"{who}.{e}" for e in ("key", "csr", "crt"))
    run("openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", str(key), "-subj", f"/CN={who}", "-outform", "DER", "-out", str(csr))
    b64 = run("base64", "-w0", str(csr)).stdout
    (WORK / "csr.b64").write_bytes(b64)
    got = curl("-u", f"{who}:{PW}", "-H", "Content-Type: application/pkcs10",
               "-H", "Content-Transfer-Encoding: base64", "--data-binary", f"@{WORK / 'csr.b64'}",
               A + "/.well-known/est/simpleenroll")
    der = subprocess.run(["base64", "-d"], input=got.stdout.replace(b"\r", b""), capture_output=True).stdout
    pem = subprocess.run(["openssl", "pkcs7", "-inform", "DER", "-print_certs"], input=der,
                         capture_output=True).stdout
    crt.write_bytes(pem)
    serial = re.search(rb"serial=([0-9A-F]+)", run("openssl", "x509", "-in", str(crt), "-noout",
                                                   "-serial").stdout).group(1).decode()
    return key, crt, serial


def revoke_on_a(jar, target):
    c = lambda *a: curl("-b", jar, "-c", jar, "-L", *a).stdout
    body = c(A + "/brsk018")
    if b"BRSK018" not in body:
        body = c(A + "/login")
        c("--data-urlencode", f"csrf={csrf(body)}", "--data-urlencode", "login_id=hanakodt",
          "--data-urlencode", f"password={PW}", A + "/login")
        body = c(A + "/brsk018")
    user = re.search(rb'value="(\d+)" id="u-' + target.encode() + rb'"', body).group(1).decode()
    body = c("--data-urlencode", f"csrf={csrf(body)}", "--data-urlencode", f"user={user}", A + "/brsk018")
    token = re.search(rb'name="token" value="([0-9a-f]{64})"', body).group(1).decode()
    done = c("--data-urlencode", f"csrf={csrf(body)}", "--data-urlencode", "action=execute",
             "--data-urlencode", f"token={token}", "--data-urlencode", f"confirm_password={CONFIRM}",
             A + "/brsk019")
    assert b"BRSK020" in done, done[:500]


def tls_refused(key, crt):
    return curl("--cert", str(crt), "--key", str(key), "-o", "/dev/null", B_CERT + "/cert-login").returncode != 0


def ocsp_revoked(crt):
    out = run("openssl", "ocsp", "-issuer", ISSUING, "-cert", str(crt), "-url", B_PKI + "/pki/ocsp",
              "-noverify").stdout
    return b": revoked" in out


def crl_url(crt, ext="crlDistributionPoints"):
    """B's URL of the CRL the certificate names in ext (its first URI, by
    path: the certificate names the public host, not B's port), or None."""
    out = run("openssl", "x509", "-in", str(crt), "-noout", "-ext", ext).stdout.decode()
    m = re.search(r"URI:(\S+)", out)
    if not m:
        return None
    uri = m.group(1)
    u = urllib.parse.urlsplit(uri)
    return B_PKI + u.path + (f"?{u.query}" if u.query else "")


def der_integer(serial_hex):
    v = int(serial_hex, 16)
    b = v.to_bytes(v.bit_length() // 8 + 1, "big")  # one more byte than needed when the top bit is set
    return b"\x02" + bytes([len(b)]) + b


def crl_lists(url, serial):
    # The entry's serial as DER (INTEGER tag, length, bytes): a byte search
    # instead of `openssl crl -text`, which takes seconds at a million entries.
    with urllib.request.urlopen(url, timeout=30) as r:
        der = r.read()
    return der_integer(serial) in der


def until(check, ceiling=10.0):
    t0 = time.perf_counter()
    while not check():
        if time.perf_counter() - t0 > ceiling:
            return float("inf")
    return time.perf_counter() - t0


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


jar = str(WORK / "jar")
tls, ocsp, delta, crl = [], [], [], []
for i in range(ROUNDS):
    key, crt, serial = enroll("sachikodt")
    url, delta_url = crl_url(crt), crl_url(crt, "freshestCRL")
    assert not tls_refused(key, crt), "B lets the new certificate in (the positive control)"
    revoke_on_a(jar, "sachikodt")
    t0 = time.perf_counter()
    tls.append(until(lambda: tls_refused(key, crt)))
    t_tls = time.perf_counter() - t0
    ocsp.append(t_tls + until(lambda: ocsp_revoked(crt)))
    if delta_url:
        delta.append(time.perf_counter() - t0 + until(lambda: crl_lists(delta_url, serial)))
    crl.append(time.perf_counter() - t0 + until(lambda: crl_lists(url, serial)))


def entries(url):
    """How many entries the CRL at url lists (once, at the end)."""
    with urllib.request.urlopen(url, timeout=60) as r:
        der = r.read()
    text = subprocess.run(["openssl", "crl", "-inform", "DER", "-noout", "-text"], input=der,
                          capture_output=True, timeout=600).stdout
    return text.count(b"Serial Number:")


print(f"  {REVOKED:,} already revoked; CRL checked (the last certificate's): {url.replace(B_PKI, 'B')},"
      f" {entries(url):,} entries" + (f"; delta {delta_url.replace(B_PKI, 'B')}" if delta_url else ""))
print(f"  {'enforced on node B after 実行 on node A':<44} {'p50':>8} {'p99':>8}   target p99")
rows = [("TLS handshake refused", tls, "< 1 s"), ("OCSP answers revoked", ocsp, "< 1 s"),
        ("delta CRL (Freshest CRL) lists the serial", delta, "(none set)"),
        ("CRL (distribution point) lists the serial", crl, "< 2 s")]
for name, xs, target in (r for r in rows if r[1]):
    print(f"  {name:<44} {pct(xs, .5) * 1e3:>6.0f}ms {pct(xs, .99) * 1e3:>6.0f}ms   {target}")
print(f"  ({ROUNDS} revocations; each poll is a new curl/openssl process, ~10-30 ms, included)")
