"""Everything the CA puts on the wire, linted by pkilint against RFC 5280 and
RFC 6960: the root, the issuing CA, the OCSP signer, the server certificate,
a client certificate issued over EST, the full and delta CRLs with a
revocation carrying a reason and an invalidity date, and OCSP responses
(good, revoked, unknown; with and without a nonce).

The only findings let through are pkilint's objection to the single-label
host name `localhost` that the demo runs under (a real deployment has its
bank's host names there); anything else at WARNING or above fails."""

import datetime
import json
import subprocess
import time

import pytest

from conftest import EVENTUALLY, crl_url_of
from test_issuance import enroll_with_openssl_and_curl, run

SERIOUS = {"FATAL", "ERROR", "WARNING"}
# pkilint wants a dotted domain name; the demo's URLs and server name are localhost.
LOCALHOST_CODES = {"pkix.invalid_domain_name_syntax", "pkix.invalid_uri_syntax"}


def lint(tool, path, *args):
    out = subprocess.run([tool, "lint", *args, "-f", "JSON", str(path)],
                         capture_output=True, text=True, timeout=120)
    assert out.stdout.strip(), f"{tool} {path}: no output: {out.stderr}"
    findings = []
    for result in json.loads(out.stdout)["results"]:
        for f in result["finding_descriptions"]:
            if f["severity"] not in SERIOUS:
                continue
            if f["code"] in LOCALHOST_CODES and "localhost" in (f.get("message") or ""):
                continue
            findings.append(f"{result['node_path']}: {f['severity']} {f['code']} {f.get('message')}")
    return findings


@pytest.fixture(scope="module")
def artifacts(server, tmp_path_factory):
    d = tmp_path_factory.mktemp("lint")
    ca = server.data_dir / "ca"
    status, _ = enroll_with_openssl_and_curl(server, d, "ichirodt", "leaf")
    assert status == "200"
    status, _ = enroll_with_openssl_and_curl(server, d, "jirodt", "revoked")
    assert status == "200"
    # jirodt's certificate revoked by the bank with a reason and an invalidity date.
    since = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=2)).replace(microsecond=0)
    server.cli("cert", "revoke", "--login-id", "jirodt", "--reason", "key-compromise",
               "--invalidity-date", since.isoformat(), "--operator", "lint")
    serial = run("openssl", "x509", "-in", "revoked.crt", "-noout", "-serial", cwd=d).stdout.split("=")[1].strip()
    # The running server puts it in force from the revocation log, the CRLs
    # of its partition follow.
    crl_url = crl_url_of(d / "revoked.crt")
    partition = int(crl_url.rsplit("/", 1)[1])
    deadline = time.monotonic() + EVENTUALLY
    while True:
        server.curl("-o", str(d / "full.crl"), crl_url)
        text = run("openssl", "crl", "-inform", "DER", "-in", "full.crl", "-noout", "-text", cwd=d).stdout
        if f"Serial Number: {serial}" in text or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert "Invalidity Date" in text and "Key Compromise" in text, text
    server.curl("-o", str(d / "delta.crl"), crl_url.replace("/pki/crl/", "/pki/delta-crl/"))
    # Another partition's CRL and delta (nothing revoked in it).
    other = (partition + 1) % 64
    server.curl("-o", str(d / "other-full.crl"), f"{server.pki_url}/pki/crl/{other}")
    server.curl("-o", str(d / "other-delta.crl"), f"{server.pki_url}/pki/delta-crl/{other}")
    ocsp = []
    for name, args in [
        ("good", ["-cert", "leaf.crt"]),
        ("good-no-nonce", ["-cert", "leaf.crt", "-no_nonce"]),
        ("good-sha256", ["-sha256", "-cert", "leaf.crt", "-no_nonce"]),
        ("revoked", ["-cert", "revoked.crt"]),
        ("unknown", ["-serial", "0x0123456789abcdef"]),
    ]:
        run("openssl", "ocsp", "-issuer", str(ca / "issuing-ca.crt"), *args, "-noverify",
            "-url", server.pki_url + "/pki/ocsp", "-respout", f"{name}.der", cwd=d)
        ocsp.append(d / f"{name}.der")
    for name in ["leaf", "revoked"]:  # the certificate alone, without openssl's headers
        run("openssl", "x509", "-in", f"{name}.crt", "-out", f"{name}.pem", cwd=d)
    certs = [ca / "root-ca.crt", ca / "issuing-ca.crt", ca / "ocsp-signer.crt", ca / "server.crt",
             d / "leaf.pem", d / "revoked.pem"]
    return certs, [d / "full.crl", d / "delta.crl", d / "other-full.crl", d / "other-delta.crl"], ocsp


def test_certificates_pass_pkilint(artifacts):
    certs, _, _ = artifacts
    findings = {c.name: lint("lint_pkix_cert", c) for c in certs}
    assert not any(findings.values()), json.dumps(findings, ensure_ascii=False, indent=1)


def test_crls_pass_pkilint(artifacts):
    _, crls, _ = artifacts
    findings = {c.name: lint("lint_crl", c, "-t", "CRL", "-p", "PKIX") for c in crls}
    assert not any(findings.values()), json.dumps(findings, ensure_ascii=False, indent=1)


def test_ocsp_responses_pass_pkilint(artifacts):
    _, _, responses = artifacts
    findings = {r.name: lint("lint_ocsp_response", r) for r in responses}
    assert not any(findings.values()), json.dumps(findings, ensure_ascii=False, indent=1)
