"""The bank operator revokes on a phone request with the real CLI, in its
own process, while the server runs: the server refuses the certificate
(within a second when idle; waited for with a generous ceiling), OCSP on the
plain-HTTP PKI listener says revoked, and the CRL there lists it with the
reason and the invalidity date. `audit export` gives the same rows as CSV
and as JSON lines."""

import csv
import datetime
import io
import json
import re
import shutil
import tempfile
import time
from pathlib import Path

from conftest import EVENTUALLY, crl_url_of, start_server
from test_issuance import run

P12_PW = "Shomei#P12demo"


def test_the_operators_revocation_takes_effect_in_the_running_server():
    tmp = Path(tempfile.mkdtemp(prefix="shomei-operator-"))
    server = start_server(tmp)
    try:
        work = tmp / "work"
        work.mkdir()
        p12 = server.data_dir / "demo-certs" / "hottojr01.p12"
        run("openssl", "pkcs12", "-in", str(p12), "-passin", f"pass:{P12_PW}", "-nodes", "-out", "hottojr01.pem",
            cwd=work)
        login = lambda: server.curl("--cert", str(work / "hottojr01.pem"), server.cert_url + "/cert-login")
        assert login().returncode == 0, "the demo certificate logs in before"

        # Compromised two days ago, at a whole second, in JST.
        jst = datetime.timezone(datetime.timedelta(hours=9))
        since = (datetime.datetime.now(jst) - datetime.timedelta(days=2)).replace(microsecond=0)
        out = server.cli("cert", "revoke", "--login-id", "hottojr01", "--reason", "key-compromise",
                         "--invalidity-date", since.isoformat(), "--operator", "yamada")
        assert "revoked: hottojr01" in out, out

        deadline = time.monotonic() + EVENTUALLY
        while (refused := login()).returncode == 0:
            assert time.monotonic() < deadline, "still accepted after the operator's revocation"
            time.sleep(0.02)
        # Refused by the TLS alert, not by a dead listener.
        assert b"certificate revoked" in refused.stderr, refused.stderr

        ca = server.data_dir / "ca"
        (work / "chain.pem").write_text((ca / "root-ca.crt").read_text() + (ca / "issuing-ca.crt").read_text())
        ocsp = run("openssl", "ocsp", "-issuer", str(ca / "issuing-ca.crt"), "-CAfile", "chain.pem",
                   "-cert", "hottojr01.pem", "-url", server.pki_url + "/pki/ocsp", cwd=work)
        assert "hottojr01.pem: revoked" in ocsp.stdout, ocsp.stdout + ocsp.stderr
        assert "Key Compromise" in ocsp.stdout or "keyCompromise" in ocsp.stdout, ocsp.stdout

        serial = re.search(r"serial=([0-9A-F]+)",
                           run("openssl", "x509", "-in", "hottojr01.pem", "-noout", "-serial", cwd=work).stdout).group(1)
        deadline = time.monotonic() + EVENTUALLY
        while True:
            assert server.curl("-o", str(work / "crl.der"), crl_url_of(work / "hottojr01.pem")).returncode == 0
            crl = run("openssl", "crl", "-inform", "DER", "-in", "crl.der", "-noout", "-text", cwd=work).stdout
            if f"Serial Number: {serial}" in crl or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        entry = crl.split(f"Serial Number: {serial}")[1].split("Serial Number:")[0]
        assert "Key Compromise" in entry, entry
        utc = since.astimezone(datetime.timezone.utc)
        assert "Invalidity Date" in entry and f"{utc:%b} {utc.day:2d} {utc:%H:%M:%S %Y} GMT" in entry, entry

        again = server.cli_result("cert", "revoke", "--login-id", "hottojr01", "--reason", "key-compromise")
        assert again.returncode != 0 and "no certificate in force" in again.stderr, again

        # The operator's other scriptable commands see it: companies, 操作履歴.
        companies = [json.loads(line) for line in server.cli("company", "list", "--json").splitlines()]
        hotto = next(c for c in companies if c["service"] == "hottokun_webjr")
        assert hotto["users"] == 2, companies
        rows = [json.loads(line) for line in
                server.cli("audit", "export", "--json", "--company-id", str(hotto["id"])).splitlines()]
        assert any(r["actor"] == "銀行:yamada" and r["operation"] == "証明書失効" and r["result"] == "成功"
                   and r["target"] == "hottojr01" for r in rows), rows
        assert all(r["company_id"] == hotto["id"] for r in rows)
        # The same rows as CSV (the default), field for field.
        csv_out = tmp / "audit.csv"
        server.cli("audit", "export", "--company-id", str(hotto["id"]), "--out", str(csv_out))
        table = list(csv.DictReader(io.StringIO(csv_out.read_text(encoding="utf-8"), newline="")))
        assert list(table[0]) == ["id", "at", "company_id", "actor", "operation", "target", "result", "detail",
                                  "client"], table[0]
        # The CSV defuses what a spreadsheet would run (a leading = + - @,
        # tab or CR gets a '), as the portal's and the console's CSV do.
        defused = lambda v: "'" + v if v[:1] in ("=", "+", "-", "@", "\t", "\r") else v
        as_json = [{k: defused("" if v is None else str(v)) for k, v in r.items()} for r in rows]
        assert table == as_json, (table, as_json)
        assert "ok" in server.cli("audit", "verify").lower()

        # A new company and its first マスター, whose temporary passwords must be
        # changed before anything else. On the shell it is a request for the
        # console's approval; break-glass commits it at once, with its reason.
        submitted = server.cli("company", "create", "--name", "株式会社申請商会", "--service", "business-ib",
                               "--master-login-id", "askmst01", "--master-name", "申請 花子", "--operator", "yamada")
        assert "submitted" in submitted and "operator console" in submitted, submitted
        company = json.loads(server.cli("company", "create", "--name", "株式会社テスト商会",
                                        "--service", "business-ib", "--master-login-id", "testmst01",
                                        "--master-name", "試験 太郎", "--operator", "yamada", "--json",
                                        "--break-glass", "--reason", "窓口の障害で承認者が不在"))
        temp = company
        shown = json.loads(server.cli("company", "show", "--id", str(company["id"]), "--json"))
        assert [u["login_id"] for u in shown["users"]] == ["testmst01"], shown
        jar = str(work / "jar")
        c = lambda *a: server.curl("-b", jar, "-c", jar, "-L", *a).stdout.decode()
        body = c(server.url + "/login")
        csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', body).group(1)
        c("--data-urlencode", f"csrf={csrf}", "--data-urlencode", "login_id=testmst01",
          "--data-urlencode", f"password={temp['login_password']}", server.url + "/login")
        landed = server.curl("-b", jar, "-c", jar, "-L", "-o", "/dev/null", "-w", "%{url_effective}",
                             server.url + "/bssk001").stdout.decode()
        assert landed.endswith("/brsk002"), landed
    finally:
        server.proc.terminate()
        server.proc.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)
