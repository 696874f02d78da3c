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
from test_crash_safety import form_csrf, revoke_with_curl, to_brsk019
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


def assert_revoked(server, work, who, what):
    """Waits until `server`'s certificate listener refuses `who`'s
    certificate, and checks that it is the revocation's TLS alert (not a
    dead listener or any other failure)."""
    refused = wait_for(what, lambda: (r := cert_login(server, work, who)).returncode != 0 and r)
    assert b"alert certificate revoked" in refused.stderr, refused.stderr


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
        assert b"alert certificate revoked" in refused.stderr, refused.stderr
        assert cert_login(b, work, "sachikodt").returncode == 0, "the control still gets in on B"
        wait_for("B's OCSP says revoked", lambda: "jirodt.crt: revoked" in ocsp(b, work, "jirodt"))

        # SIGKILL A in the middle of a revocation: whole or absent, and B carries on.
        status, _ = enroll_with_openssl_and_curl(b, work, "ichirodt", "ichirodt")
        assert status == "200"
        execute = ["curl", "-sS", "-v", "--http1.1", "--cacert", str(a.root_ca),
                   *to_brsk019(a, str(work / "hanako2.jar"), "hanakodt", "ichirodt")]
        # Kill once the 実行 request has reached A (curl -v shows the POST's
        # headers, then its body sent: "} [N bytes data]"): during the
        # password check, its commit, or after it. Before that, "nothing
        # revoked" would prove nothing.
        req = subprocess.Popen(execute, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=work)
        said, posted, sent = [], False, False
        for line in req.stderr:
            said.append(line)
            posted = posted or line.startswith(b"> POST /brsk019")
            if posted and line.startswith(b"} ["):
                sent = True
                break
        assert sent, b"".join(said)
        a.proc.send_signal(signal.SIGKILL)
        a.proc.wait(10)
        out, rest = req.communicate(timeout=60)
        said.append(rest)
        # Answered before the kill (BRSK020), or cut off in flight (empty
        # reply, reset): never refused, never not sent.
        assert (req.returncode == 0 and b"BRSK020" in out) or req.returncode in (52, 56), \
            (req.returncode, out[-500:], b"".join(said)[-2000:])
        serial = re.search(r"serial=([0-9A-F]+)",
                           run("openssl", "x509", "-in", "ichirodt.crt", "-noout", "-serial", cwd=work).stdout
                           ).group(1).lower().lstrip("0")
        revoked = db.one("SELECT count(*) FROM certificates WHERE ltrim(serial, '0') = ? "
                         "AND revoked_at IS NOT NULL", serial)
        rows = db.one("SELECT count(*) FROM audit_log WHERE operation = '証明書失効' AND result = '成功' "
                      "AND target_login_id = 'ichirodt'")
        assert (revoked, rows) in ((0, 0), (1, 1)), (revoked, rows)
        if req.returncode == 0:
            assert (revoked, rows) == (1, 1), "BRSK020 was answered: it is committed"
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
        # jirodt and sachikodt are revoked in turn; ichirodt is the control.
        for who in ("jirodt", "sachikodt", "ichirodt"):
            status, _ = enroll_with_openssl_and_curl(a, work, who, who)
            assert status == "200", who
        done = revoke_with_curl(a, str(work / "jiro.jar"), "jirodt", "jirodt")
        assert "BRSK020" in done
        assert_revoked(b, work, "jirodt", "B refuses jirodt")
        assert cert_login(b, work, "ichirodt").returncode == 0, "the control gets in on B"

        # Load on both nodes while the database restarts: logins, each of
        # which reads the user and writes its session and 操作履歴 rows. A
        # login that cannot reach the database is answered (the system error
        # page, 500), never a hang or a dead node; logins get in again on
        # both nodes once it is back, without a restart of either.
        stop = threading.Event()
        answers = []

        def load(server):
            while not stop.is_set():
                jar = work / f"load-{threading.get_ident()}.jar"
                jar.unlink(missing_ok=True)
                jar = str(jar)
                body = server.curl("-c", jar, "-b", jar, "--max-time", "30", server.url + "/login").stdout.decode()
                csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', body)
                if not csrf:
                    answers.append(("no form", body[:200]))
                    continue
                got = server.curl("-c", jar, "-b", jar, "-L", "--max-time", "30", "-w", "\n%{http_code} %{url_effective}",
                                  "--data-urlencode", f"csrf={csrf.group(1)}",
                                  "--data-urlencode", "login_id=hanakodt",
                                  "--data-urlencode", f"password={LOGIN_PW}",
                                  server.url + "/login")
                answers.append((got.returncode, got.stdout.decode().rpartition("\n")[2]))
        workers = [threading.Thread(target=load, args=(s,)) for s in (a, b)]
        for w in workers:
            w.start()
        top = lambda xs, node: sum(1 for x in xs if x[0] == 0 and x[1] == f"200 {node.url}/top")
        wait_for("logins get in on both nodes", lambda: top(answers, a) >= 2 and top(answers, b) >= 2)
        subprocess.run([restart], check=True, timeout=120)
        # After the restart: logins that reach /top again on both nodes.
        since = len(answers)
        wait_for("logins get in again on both nodes after the restart",
                 lambda: top(answers[since:], a) >= 2 and top(answers[since:], b) >= 2, ceiling=60)
        stop.set()
        for w in workers:
            w.join(60)
        odd = [x for x in answers if not (x[0] == 0 and x[1].split(" ")[0] in ("200", "500"))]
        assert not odd, odd[:5]
        assert a.proc.poll() is None and b.proc.poll() is None, "both nodes kept running"

        # Both are ready again by themselves; nothing committed is lost.
        for s in (a, b):
            wait_for("ready after the restart", lambda s=s: s.curl(
                "-o", "/dev/null", "-w", "%{http_code}", s.url + "/readyz").stdout == b"200")
        assert db.one("SELECT count(*) FROM certificates WHERE revoked_at IS NOT NULL") >= 1
        assert_revoked(a, work, "jirodt", "A refuses jirodt")
        assert cert_login(a, work, "sachikodt").returncode == 0, "not yet revoked: gets in"
        # And the revocation view works across the restart: revoke on B, A refuses.
        done = revoke_with_curl(b, str(work / "sachi.jar"), "hanakodt", "sachikodt")
        assert "BRSK020" in done
        assert_revoked(a, work, "sachikodt", "A refuses sachikodt")
        assert cert_login(a, work, "ichirodt").returncode == 0, "the control gets in on A"
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
        # curl's --max-time is a ceiling for a hang, not a budget: an answer
        # that waited for the database would lack none of its gauges.
        got = subprocess.run(["curl", "-sS", "--max-time", "20", "-w", "\n%{http_code}", metrics["m"]],
                             capture_output=True, text=True, timeout=30)
        body, _, code = got.stdout.rpartition("\n")
        return code, body

    def ready():
        return node.curl("-o", "/dev/null", "-w", "%{http_code}", "--max-time", "20",
                         node.url + "/readyz").stdout
    try:
        code, body = scrape()
        assert code == "200" and re.search(r"^shomei_sessions \d+$", body, re.M), body
        assert ready() == b"200"
        subprocess.run([stop], check=True, timeout=120)
        try:
            # With the database down /metrics still answers, from memory:
            # the in-memory gauges are there and the one read from the
            # database (shomei_sessions) is left out rather than waited for.
            code, body = scrape()
            assert code == "200", (code, body[:200])
            assert "shomei_revoked_certificates " in body and not re.search(r"^shomei_sessions ", body, re.M), body
            # At once (the database does not answer) or within the view's
            # bound (5 s): 503 with the reason, never a hang (curl's ceiling
            # would give 000).
            assert ready() == b"503"
            why = node.curl("--max-time", "20", node.url + "/readyz").stdout.decode()
            assert why.startswith("not ready:") and ("database unreachable" in why or "revocation view" in why), why
        finally:
            subprocess.run([start], check=True, timeout=120)
        wait_for("ready again", lambda: ready() == b"200")
        wait_for("sessions counted again", lambda: re.search(r"^shomei_sessions \d+$", scrape()[1], re.M))
    finally:
        node.proc.kill()
        node.proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
