"""A revocation that 実行 reported is durable: the server is killed with
SIGKILL right after BRSK020 came back, restarted on the same data, and the
certificate is still refused by TLS and listed by the CRL and OCSP."""

import re
import shutil
import signal
import tempfile
from pathlib import Path

from conftest import CONFIRM_PW, LOGIN_PW, crl_path_of, start_server
from test_issuance import enroll_with_openssl_and_curl, run


def form_csrf(body):
    return re.search(r'name="csrf" value="([0-9a-f]{64})"', body).group(1)


def to_brsk019(server, jar, actor, target):
    """`actor`'s BSSK001 → BRSK019 walk, as plain HTTP requests: the curl
    arguments of the 実行 that follows (BRSK019 is pending)."""
    c = lambda *a: server.curl("-b", jar, "-c", jar, "-L", *a).stdout.decode()
    body = c(server.url + "/login")
    c("--data-urlencode", f"csrf={form_csrf(body)}", "--data-urlencode", f"login_id={actor}",
      "--data-urlencode", f"password={LOGIN_PW}", server.url + "/login")
    body = c(server.url + "/brsk018")
    user = re.search(r'value="(\d+)" id="u-' + target + '"', body).group(1)
    body = c("--data-urlencode", f"csrf={form_csrf(body)}", "--data-urlencode", f"user={user}", server.url + "/brsk018")
    token = re.search(r'name="token" value="([0-9a-f]{64})"', body).group(1)
    return ["-b", jar, "-c", jar, "-L", "--data-urlencode", f"csrf={form_csrf(body)}",
            "--data-urlencode", "action=execute", "--data-urlencode", f"token={token}",
            "--data-urlencode", f"confirm_password={CONFIRM_PW}", server.url + "/brsk019"]


def revoke_with_curl(server, jar, actor, target):
    """`actor`'s BSSK001 → BRSK020 walk, as plain HTTP requests."""
    return server.curl(*to_brsk019(server, jar, actor, target)).stdout.decode()


def test_a_revocation_survives_sigkill():
    tmp = Path(tempfile.mkdtemp(prefix="shomei-crash-"))
    work = tmp / "work"
    work.mkdir()
    server = start_server(tmp)
    try:
        # jirodt's certificate is revoked; sachikodt's is the control.
        for who in ("jirodt", "sachikodt"):
            status, _ = enroll_with_openssl_and_curl(server, work, who, who)
            assert status == "200", who
        cert_login = lambda who: server.curl("--cert", str(work / f"{who}.crt"), "--key",
                                             str(work / f"{who}.key"), server.cert_url + "/cert-login")
        assert cert_login("jirodt").returncode == 0
        done = revoke_with_curl(server, str(work / "jar"), "jirodt", "jirodt")
        assert "BRSK020" in done and "失効済" in done
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(10)

        server = start_server(tmp)
        # The restarted listener refuses the handshake with the alert that
        # names the reason, and lets the control in.
        refused = cert_login("jirodt")
        assert refused.returncode != 0 and b"alert certificate revoked" in refused.stderr, refused
        control = cert_login("sachikodt")
        assert control.returncode == 0 and "sachikodt" in control.stdout.decode(), control

        serial = re.search(r"serial=([0-9A-F]+)",
                           run("openssl", "x509", "-in", "jirodt.crt", "-noout", "-serial", cwd=work).stdout).group(1)
        assert server.curl("-o", str(work / "crl.der"), server.url + crl_path_of(work / "jirodt.crt")).returncode == 0
        crl = run("openssl", "crl", "-inform", "DER", "-in", "crl.der", "-noout", "-text", cwd=work).stdout
        assert f"Serial Number: {serial}" in crl

        ca = server.data_dir / "ca"
        (work / "chain.pem").write_text((ca / "root-ca.crt").read_text() + (ca / "issuing-ca.crt").read_text())
        ocsp = run("openssl", "ocsp", "-issuer", str(ca / "issuing-ca.crt"), "-CAfile", "chain.pem",
                   "-cert", "jirodt.crt", "-url", server.pki_url + "/pki/ocsp", cwd=work)
        assert "jirodt.crt: revoked" in ocsp.stdout, ocsp.stdout + ocsp.stderr
    finally:
        server.proc.kill()
        server.proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
