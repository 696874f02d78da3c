"""Two real `shomei serve` processes on one database — PostgreSQL (each node
with its own data directory and a copy of the first one's ca/), and the
embedded SQLite shared through one data directory: a session opened on A
continues on B; a certificate enrolled on B logs in on A; a revocation on A
is refused by B's certificate listener and answered revoked by B's OCSP; A
killed with SIGKILL in the middle of a revocation leaves it whole or absent,
and B carries on."""

import os
import re
import subprocess
import shutil
import signal
import sqlite3
import tempfile
import threading
import time
from pathlib import Path

import pytest

from conftest import LOGIN_PW, start_server
from test_crash_safety import form_csrf, revoke_with_curl
from test_issuance import enroll_with_openssl_and_curl, run


def wait_for(what, check, ceiling=30.0):
    """Polls `check` until it returns something true (a generous ceiling,
    never a tight budget)."""
    deadline = time.monotonic() + ceiling
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"never: {what}")


def cert_login(server, work, who):
    return server.curl("--cert", str(work / f"{who}.crt"), "--key", str(work / f"{who}.key"),
                       server.cert_url + "/cert-login")


def ocsp(server, work, who):
    ca = server.data_dir / "ca"
    (work / "chain.pem").write_text((ca / "root-ca.crt").read_text() + (ca / "issuing-ca.crt").read_text())
    out = run("openssl", "ocsp", "-issuer", str(ca / "issuing-ca.crt"), "-CAfile", "chain.pem",
              "-cert", f"{who}.crt", "-url", server.pki_url + "/pki/ocsp", cwd=work)
    return out.stdout + out.stderr


PG = os.environ.get("SHOMEI_TEST_DATABASE_URL", "")


class Database:
    """The nodes' shared database, queried from outside."""

    def __init__(self, backend, tmp):
        self.backend = backend
        self.tmp = tmp
        self.url = None
        if backend == "postgres":
            name = f"two_nodes_{os.getpid()}_{time.monotonic_ns() % 10**9}"
            subprocess.run(["psql", PG, "-q", "-c", f"CREATE DATABASE {name}"], check=True, timeout=60)
            self.url = re.sub(r"/[^/]*$", f"/{name}", PG)

    def one(self, sql, *args):
        if self.backend == "sqlite":
            db = sqlite3.connect(self.tmp / "data" / "shomei.db", timeout=30)
            try:
                return db.execute(sql, args).fetchone()[0]
            finally:
                db.close()
        for a in args:
            sql = sql.replace("?", "'" + str(a).replace("'", "''") + "'", 1)
        out = subprocess.run(["psql", self.url, "-At", "-c", sql], check=True, capture_output=True,
                             text=True, timeout=60).stdout.strip()
        return int(out) if out.lstrip("-").isdigit() else out

    def start(self, tmp):
        if self.url:
            return start_server(tmp, "--database-url", self.url)
        return start_server(self.tmp)


@pytest.mark.parametrize("backend", ["postgres", "sqlite"])
def test_two_nodes_share_sessions_certificates_and_revocations(backend):
    if backend == "postgres" and not PG:
        pytest.fail("SHOMEI_TEST_DATABASE_URL is unset: run under scripts/postgres (scripts/test does)")
    tmp = Path(tempfile.mkdtemp(prefix="shomei-two-"))
    work = tmp / "work"
    work.mkdir()
    db = Database(backend, tmp)
    a = db.start(tmp / "a")
    if db.url:
        # The second node brings a copy of the first one's CA.
        shutil.copytree(a.data_dir / "ca", tmp / "b" / "data" / "ca")
    b = db.start(tmp / "b")
    try:
        # Log in on A, continue on B (no stickiness).
        jar = str(work / "hanako.jar")
        body = a.curl("-c", jar, "-b", jar, a.url + "/login").stdout.decode()
        top = a.curl("-c", jar, "-b", jar, "-L", "--data-urlencode", f"csrf={form_csrf(body)}",
                     "--data-urlencode", "login_id=hanakodt", "--data-urlencode", f"password={LOGIN_PW}",
                     a.url + "/login").stdout.decode()
        assert "北銀 花子" in top
        on_b = b.curl("-c", jar, "-b", jar, "-L", b.url + "/brsk018").stdout.decode()
        assert "BRSK018" in on_b and "北銀 花子" in on_b, on_b[:2000]

        # Enroll on B; log in by certificate on A (sachikodt is the control).
        for who in ("jirodt", "sachikodt"):
            status, _ = enroll_with_openssl_and_curl(b, work, who, who)
            assert status == "200", who
        page = cert_login(a, work, "jirodt")
        assert page.returncode == 0 and "jirodt" in page.stdout.decode()
        assert "jirodt.crt: good" in ocsp(b, work, "jirodt")

        # Revoke on A; B's certificate listener and OCSP refuse it.
        done = revoke_with_curl(a, str(work / "jiro.jar"), "jirodt", "jirodt")
        assert "BRSK020" in done
        refused = wait_for("B refuses the revoked certificate",
                           lambda: (r := cert_login(b, work, "jirodt")).returncode != 0 and r)
        assert b"certificate revoked" in refused.stderr, refused.stderr
        assert cert_login(b, work, "sachikodt").returncode == 0, "the control still gets in on B"
        wait_for("B's OCSP says revoked", lambda: "jirodt.crt: revoked" in ocsp(b, work, "jirodt"))

        # SIGKILL A in the middle of a revocation: whole or absent, and B carries on.
        status, _ = enroll_with_openssl_and_curl(b, work, "ichirodt", "ichirodt")
        assert status == "200"
        worker = threading.Thread(target=lambda: revoke_with_curl(a, str(work / "hanako2.jar"),
                                                                   "hanakodt", "ichirodt"))
        worker.start()
        # Kill once BRSK019 is pending (the next request is 実行), a moment
        # later: before, during or after its commit.
        def pending():
            return db.one("SELECT count(*) FROM sessions WHERE pending_token IS NOT NULL")
        wait_for("BRSK019 is pending on A", lambda: pending() or not worker.is_alive(), ceiling=60)
        time.sleep(0.02)
        a.proc.send_signal(signal.SIGKILL)
        a.proc.wait(10)
        worker.join(60)
        serial = re.search(r"serial=([0-9A-F]+)",
                           run("openssl", "x509", "-in", "ichirodt.crt", "-noout", "-serial", cwd=work).stdout
                           ).group(1).lower().lstrip("0")
        revoked = db.one("SELECT count(*) FROM certificates WHERE ltrim(serial, '0') = ? "
                         "AND revoked_at IS NOT NULL", serial)
        rows = db.one("SELECT count(*) FROM audit_log WHERE operation = '証明書失効' AND result = '成功' "
                      "AND target_login_id = 'ichirodt'")
        assert (revoked, rows) in ((0, 0), (1, 1)), (revoked, rows)
        assert b.curl("-o", "/dev/null", "-w", "%{http_code}", b.url + "/login").stdout == b"200"
        expected = "revoked" if revoked else "good"
        wait_for("B agrees with the database",
                 lambda: f"ichirodt.crt: {expected}" in ocsp(b, work, "ichirodt"))
        assert b.curl("-o", "/dev/null", "-w", "%{http_code}", b.url + "/readyz").stdout == b"200"
    finally:
        for s in (a, b):
            if s.proc.poll() is None:
                s.proc.kill()
                s.proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


def test_two_nodes_recover_by_themselves_when_postgresql_restarts_under_load():
    restart = os.environ.get("SHOMEI_TEST_PG_RESTART")
    if not PG or not restart:
        pytest.fail("needs scripts/postgres (SHOMEI_TEST_DATABASE_URL, SHOMEI_TEST_PG_RESTART); scripts/test runs it")
    tmp = Path(tempfile.mkdtemp(prefix="shomei-pgrestart-"))
    work = tmp / "work"
    work.mkdir()
    db = Database("postgres", tmp)
    a = db.start(tmp / "a")
    shutil.copytree(a.data_dir / "ca", tmp / "b" / "data" / "ca")
    b = db.start(tmp / "b")
    try:
        for who in ("jirodt", "sachikodt"):
            status, _ = enroll_with_openssl_and_curl(a, work, who, who)
            assert status == "200", who
        done = revoke_with_curl(a, str(work / "jiro.jar"), "jirodt", "jirodt")
        assert "BRSK020" in done
        wait_for("B refuses jirodt", lambda: cert_login(b, work, "jirodt").returncode != 0)

        # Load on both nodes while the database restarts.
        stop = threading.Event()
        answers = []

        def load(server):
            while not stop.is_set():
                got = server.curl("-o", "/dev/null", "-w", "%{http_code}", server.url + "/login").stdout
                answers.append(got)
                time.sleep(0.02)
        workers = [threading.Thread(target=load, args=(s,)) for s in (a, b)]
        for w in workers:
            w.start()
        subprocess.run([restart], check=True, timeout=120)
        time.sleep(0.5)
        stop.set()
        for w in workers:
            w.join(30)
        assert answers and all(x == b"200" for x in answers), set(answers)
        assert a.proc.poll() is None and b.proc.poll() is None, "both nodes kept running"

        # Both are ready again by themselves; nothing committed is lost.
        for s in (a, b):
            wait_for("ready after the restart", lambda s=s: s.curl(
                "-o", "/dev/null", "-w", "%{http_code}", s.url + "/readyz").stdout == b"200")
        assert db.one("SELECT count(*) FROM certificates WHERE revoked_at IS NOT NULL") >= 1
        assert cert_login(a, work, "jirodt").returncode != 0
        assert cert_login(a, work, "sachikodt").returncode == 0, "the control gets in"
        # And the revocation view works across the restart: revoke on B, A refuses.
        done = revoke_with_curl(b, str(work / "sachi.jar"), "hanakodt", "sachikodt")
        assert "BRSK020" in done
        wait_for("A refuses sachikodt", lambda: cert_login(a, work, "sachikodt").returncode != 0)
        wait_for("A's OCSP says revoked", lambda: "sachikodt.crt: revoked" in ocsp(a, work, "sachikodt"))
    finally:
        for s in (a, b):
            if s.proc.poll() is None:
                s.proc.kill()
                s.proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


def test_metrics_answer_while_postgresql_is_down_and_readyz_says_why():
    """Monitoring must see an outage: /metrics answers at once without the
    one figure read from the database (sessions), /readyz fails with the
    reason, and both come back when PostgreSQL does."""
    stop, start = os.environ.get("SHOMEI_TEST_PG_STOP"), os.environ.get("SHOMEI_TEST_PG_START")
    if not PG or not stop or not start:
        pytest.fail("needs scripts/postgres (SHOMEI_TEST_PG_STOP, SHOMEI_TEST_PG_START); scripts/test runs it")
    tmp = Path(tempfile.mkdtemp(prefix="shomei-pgdown-"))
    db = Database("postgres", tmp)
    node = db.start(tmp / "a")
    metrics = {}
    wait_for("the metrics address", lambda: metrics.update(
        m=next((re.search(r"Metrics \(Prometheus\): (\S+)", l).group(1) for l in node.output
                if "Metrics (Prometheus)" in l), None)) or metrics["m"])

    def scrape():
        got = subprocess.run(["curl", "-sS", "--max-time", "5", "-w", "\n%{http_code}", metrics["m"]],
                             capture_output=True, text=True, timeout=30)
        body, _, code = got.stdout.rpartition("\n")
        return code, body

    def ready():
        return node.curl("-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5",
                         node.url + "/readyz").stdout
    try:
        code, body = scrape()
        assert code == "200" and re.search(r"^shomei_sessions \d+$", body, re.M), body
        assert ready() == b"200"
        subprocess.run([stop], check=True, timeout=120)
        try:
            t0 = time.monotonic()
            code, body = scrape()
            took = time.monotonic() - t0
            assert code == "200", (code, body[:200])
            assert took < 4, f"/metrics took {took:.1f} s with the database down"
            assert "shomei_revoked_certificates " in body and not re.search(r"^shomei_sessions ", body, re.M), body
            # At once (the database does not answer) or within the view's
            # bound (5 s): 503 with the reason, never a hang.
            t0 = time.monotonic()
            assert ready() == b"503"
            assert time.monotonic() - t0 < 4, "/readyz hung"
            why = node.curl("--max-time", "5", node.url + "/readyz").stdout.decode()
            assert why.startswith("not ready:") and ("database unreachable" in why or "revocation view" in why), why
        finally:
            subprocess.run([start], check=True, timeout=120)
        wait_for("ready again", lambda: ready() == b"200")
        wait_for("sessions counted again", lambda: re.search(r"^shomei_sessions \d+$", scrape()[1], re.M))
    finally:
        node.proc.kill()
        node.proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
