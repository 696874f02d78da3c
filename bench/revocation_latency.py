#!/usr/bin/env python3
"""Revocation → enforced latency, measured as a bank's customer sees it.

Each round: ichirodt (一般) enrolls a new certificate over EST (so it is 発行済 and
the certificate listener accepts it); hanakodt revokes it in the portal
(BRSK018 → BRSK019 → 実行); from the moment 実行's answer is back, three
probes poll until each sees the revocation: a TLS handshake with the
certificate is refused, the OCSP responder (plain-HTTP PKI listener) answers
revoked, and the full CRL the certificate names in its CRL distribution point
(its partition's; polled with If-None-Match, fetched when it changes) lists
the serial. Prints p50 / p99 / max of each over the rounds, and the sizes of
the CRLs fetched.

Usage: revocation_latency.py PORTAL CERT_URL PKI_URL CA_DIR WORKDIR ROUNDS
"""

import base64
import http.cookiejar
import os
import re
import socket
import ssl
import subprocess
import sys
import time
import urllib.parse
import urllib.request

portal, cert_url, pki, ca_dir, work, rounds = sys.argv[1:7]
rounds = int(rounds)
os.makedirs(work, exist_ok=True)
root = os.path.join(ca_dir, "root-ca.crt")
LOGIN_PW = "Shomei#Demo1"
CONFIRM_PW = "Shomei#Kakunin1"
DEADLINE = 10.0

tls_ctx = ssl.create_default_context(cafile=root)
jar = http.cookiejar.CookieJar()
web = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), urllib.request.HTTPSHandler(context=tls_ctx))


def fetch(url, data=None):
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    with web.open(url, body, timeout=30) as r:
        return r.read().decode()


def csrf(body):
    return re.search(r'name="csrf" value="([0-9a-f]{64})"', body).group(1)


def enroll(who, out):
    key, csr = out + ".key", out + ".csr"
    subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", key, "-subj", f"/CN={who}", "-outform", "DER", "-out", csr],
                   check=True, capture_output=True)
    req = urllib.request.Request(portal + "/.well-known/est/simpleenroll",
                                 data=base64.b64encode(open(csr, "rb").read()),
                                 headers={"Content-Type": "application/pkcs10",
                                          "Content-Transfer-Encoding": "base64",
                                          "Authorization": "Basic " + base64.b64encode(f"{who}:{LOGIN_PW}".encode()).decode()})
    with urllib.request.urlopen(req, context=tls_ctx, timeout=30) as r:
        p7 = base64.b64decode(r.read())
    pem = subprocess.run(["openssl", "pkcs7", "-inform", "DER", "-print_certs"], input=p7,
                         check=True, capture_output=True).stdout
    open(out + ".crt", "wb").write(pem)
    serial = subprocess.run(["openssl", "x509", "-in", out + ".crt", "-noout", "-serial"],
                            check=True, capture_output=True, text=True).stdout.strip().split("=")[1]
    # The OCSP request for this certificate, made once by openssl.
    subprocess.run(["openssl", "ocsp", "-issuer", os.path.join(ca_dir, "issuing-ca.crt"), "-cert", out + ".crt",
                    "-no_nonce", "-reqout", out + ".ocsp"], check=True, capture_output=True)
    return out + ".crt", key, bytes.fromhex(serial)


def crl_url_of(cert):
    text = subprocess.run(["openssl", "x509", "-in", cert, "-noout", "-ext", "crlDistributionPoints"],
                          check=True, capture_output=True, text=True).stdout
    return re.search(r"URI:(\S+)", text).group(1)


def tls_accepted(cert, key):
    ctx = ssl.create_default_context(cafile=root)
    ctx.load_cert_chain(cert, key)
    host, port = urllib.parse.urlsplit(cert_url).netloc.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname=host) as s:
                s.sendall(b"GET /cert-login HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                return s.recv(16).startswith(b"HTTP/1.1")
    except (ssl.SSLError, ConnectionError, OSError):
        return False


def der_integer(serial):
    if serial[0] & 0x80:
        serial = b"\0" + serial
    return bytes([2, len(serial)]) + serial


def ocsp_revoked(request, serial):
    req = urllib.request.Request(pki + "/pki/ocsp", data=request, headers={"Content-Type": "application/ocsp-request"})
    with urllib.request.urlopen(req, timeout=5) as r:
        body = r.read()
    at = body.find(der_integer(serial))
    # certStatus follows the CertID's serial: [1] revoked is 0xa1.
    return at >= 0 and body[at + len(der_integer(serial))] == 0xA1


class CrlPoller:
    """Polls one CRL URL as a relying party's cache would."""

    def __init__(self, url):
        self.url = url
        self.etag = None
        self.der = b""

    def lists(self, serial):
        headers = {"If-None-Match": self.etag} if self.etag else {}
        try:
            with urllib.request.urlopen(urllib.request.Request(self.url, headers=headers), timeout=10) as r:
                self.der = r.read()
                self.etag = r.headers.get("ETag")
        except urllib.error.HTTPError as e:
            if e.code != 304:
                raise
        return der_integer(serial) in self.der


def revoke(target):
    body = fetch(portal + "/brsk018")
    user = re.search(r'value="(\d+)" id="u-' + target + '"', body).group(1)
    body = fetch(portal + "/brsk018", {"csrf": csrf(body), "user": user})
    token = re.search(r'name="token" value="([0-9a-f]{64})"', body).group(1)
    body = fetch(portal + "/brsk019", {"csrf": csrf(body), "action": "execute", "token": token,
                                       "confirm_password": CONFIRM_PW})
    if "BRSK020" not in body:
        raise SystemExit("revocation did not reach BRSK020")


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


body = fetch(portal + "/login")
fetch(portal + "/login", {"csrf": csrf(body), "login_id": "hanakodt", "password": LOGIN_PW})
pollers = {}
sizes = []
results = {"TLS refuses": [], "OCSP says revoked": [], "CRL lists it": []}
for i in range(rounds):
    cert, key, serial = enroll("ichirodt", os.path.join(work, f"r{i}"))
    request = open(os.path.join(work, f"r{i}.ocsp"), "rb").read()
    url = crl_url_of(cert)
    crl = pollers.setdefault(url, CrlPoller(url))
    if not tls_accepted(cert, key) or ocsp_revoked(request, serial) or crl.lists(serial):
        raise SystemExit("a fresh certificate is not in force before its revocation")
    revoke("ichirodt")
    t0 = time.monotonic()
    probes = {"TLS refuses": lambda: not tls_accepted(cert, key),
              "OCSP says revoked": lambda: ocsp_revoked(request, serial),
              "CRL lists it": lambda: crl.lists(serial)}
    while probes:
        for name, probe in list(probes.items()):
            if probe():
                results[name].append((time.monotonic() - t0) * 1000)
                del probes[name]
        if time.monotonic() - t0 > DEADLINE:
            raise SystemExit(f"not enforced within {DEADLINE}s: {', '.join(probes)}")
        time.sleep(0.002)
    sizes.append(len(crl.der))

print(f"{'probe':<22} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}   ({rounds} revocations in {len(pollers)} CRL partitions; target < 1000 ms)")
for name, xs in results.items():
    print(f"{name:<22} {pct(xs, 50):>8.1f} {pct(xs, 99):>8.1f} {max(xs):>8.1f}")
print(f"CRL a client fetched for one certificate: {min(sizes) / 1e6:.2f}–{max(sizes) / 1e6:.2f} MB (target <= 2 MB)")
