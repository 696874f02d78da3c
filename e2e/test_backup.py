"""`shomei backup` while the server is busy, and a restore from it: the copy
is consistent (integrity, 操作履歴 hash chain, every login's change with its
row), keeps the keys private, and a server started on it has everything,
including a revocation."""

import shutil
import sqlite3
import stat
import tempfile
import threading
import time
from pathlib import Path

from conftest import EVENTUALLY, LOGIN_PW, start_server
from test_crash_safety import form_csrf
from test_issuance import enroll_with_openssl_and_curl


def stop(server):
    server.proc.kill()
    server.proc.wait(10)


def test_a_backup_taken_under_load_restores(tmp_path):
    tmp = Path(tempfile.mkdtemp(prefix="shomei-backup-"))
    restored_tmp = Path(tempfile.mkdtemp(prefix="shomei-restore-"))
    work = tmp_path
    server = start_server(tmp)
    restored = None
    try:
        status, _ = enroll_with_openssl_and_curl(server, work, "jirodt", "jiro")
        assert status == "200"
        status, _ = enroll_with_openssl_and_curl(server, work, "ichirodt", "ichiro")
        assert status == "200"
        server.cli("cert", "revoke", "--login-id", "jirodt", "--reason", "key-compromise")

        # Logins keep coming while the backup runs, one stream per user; each
        # sets the user's 前回ログイン日時 and writes its 操作履歴 row, in one
        # transaction.
        users = ["hanakodt", "tarodt", "ichirodt", "sachikodt"]
        stop_load = threading.Event()
        logins = []

        def load(who):
            n = 0
            while not stop_load.is_set():
                n += 1
                # A new browser each time: a logged-in one is sent on from /login.
                jar = str(work / f"jar-{who}-{n}")
                body = server.curl("-c", jar, "-b", jar, server.url + "/login").stdout.decode()
                got = server.curl("-c", jar, "-b", jar, "-o", "/dev/null", "-w", "%{http_code}",
                                  "--data-urlencode", f"csrf={form_csrf(body)}",
                                  "--data-urlencode", f"login_id={who}",
                                  "--data-urlencode", f"password={LOGIN_PW}", server.url + "/login")
                logins.append(got.stdout.decode())

        threads = [threading.Thread(target=load, args=(who,)) for who in users]

        def wait_for_logins(n):
            deadline = time.monotonic() + EVENTUALLY
            while len(logins) < n:
                assert time.monotonic() < deadline and all(t.is_alive() for t in threads), logins
                time.sleep(0.01)

        for t in threads:
            t.start()
        try:
            # Logins before the backup starts, during it, and after it ends. A
            # backup of this small database is quick: taken again (into a new
            # directory) until logins were written while one ran.
            wait_for_logins(len(users))
            for attempt in range(20):
                before = len(logins)
                out = server.cli("backup", "--out", str(restored_tmp / f"try{attempt}"))
                during = len(logins)
                if during > before:
                    break
            # Of the next len(users) + 1 logins, one began after the backup
            # ended: it is surely not in the copy.
            wait_for_logins(during + len(users) + 1)
        finally:
            stop_load.set()
            for t in threads:
                t.join(30)
        assert logins and all(code == "303" for code in logins), logins
        assert during > before, "logins were written while a backup ran"
        (restored_tmp / f"try{attempt}").rename(restored_tmp / "data")
        assert "操作履歴 hash chain ok" in out and "revoked certificates: 2" in out, out

        copy = restored_tmp / "data"
        assert (copy / "MANIFEST.txt").read_text() in out
        # The key is a file here: in the copy, and the manifest says nothing
        # of a token (test_hsm's does).
        assert (copy / "ca" / "issuing-ca.key").exists() and "PKCS#11" not in out, out
        # The copy is one moment of that load: some logins in, the later ones
        # not, and for each user the 前回ログイン日時 is its newest ログイン row.
        db = sqlite3.connect(f"file:{copy / 'shomei.db'}?mode=ro", uri=True)
        try:
            in_copy = db.execute("SELECT count(*) FROM audit_log WHERE operation = 'ログイン' AND result = '成功' "
                                 "AND client_addr = '127.0.0.1'").fetchone()[0]
            for who in users:
                last, newest = db.execute(
                    "SELECT u.last_login_at, (SELECT max(a.at) FROM audit_log a WHERE a.actor_login_id = u.login_id "
                    "AND a.operation = 'ログイン' AND a.result = '成功') FROM users u WHERE u.login_id = ?",
                    (who,)).fetchone()
                assert last == newest, (who, last, newest)
        finally:
            db.close()
        assert before <= in_copy < len(logins), (before, in_copy, during, len(logins))
        for private in [copy / "shomei.db", copy / "ca" / "root-ca.key", copy / "ca" / "issuing-ca.key"]:
            assert stat.S_IMODE(private.stat().st_mode) == 0o600, private
        assert stat.S_IMODE(copy.stat().st_mode) == 0o700

        # Never over an existing backup.
        again = server.cli_result("backup", "--out", str(copy))
        assert again.returncode != 0 and "is not empty" in again.stderr, again.stderr

        # Restore: a server on the copy refuses the revoked certificate, and
        # the copy's hash chain verifies.
        stop(server)
        restored = start_server(restored_tmp)
        refused = restored.curl("--cert", str(work / "jiro.crt"), "--key", str(work / "jiro.key"),
                                restored.cert_url + "/cert-login")
        assert refused.returncode != 0 and b"certificate revoked" in refused.stderr, refused
        # The control: a certificate in force gets in on the same listener.
        admitted = restored.curl("--cert", str(work / "ichiro.crt"), "--key", str(work / "ichiro.key"),
                                 restored.cert_url + "/cert-login")
        assert admitted.returncode == 0 and "ichirodt" in admitted.stdout.decode(), admitted
        assert "OK" in restored.cli("audit", "verify")
        jar = str(work / "jar2")
        body = restored.curl("-c", jar, "-b", jar, restored.url + "/login").stdout.decode()
        got = restored.curl("-c", jar, "-b", jar, "-L", "--data-urlencode", f"csrf={form_csrf(body)}",
                            "--data-urlencode", "login_id=hanakodt",
                            "--data-urlencode", f"password={LOGIN_PW}", restored.url + "/login")
        assert "北銀 花子" in got.stdout.decode()
    finally:
        for s in [server, restored]:
            if s is not None and s.proc.poll() is None:
                stop(s)
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(restored_tmp, ignore_errors=True)
