"""`shomei backup` while the server is busy, and a restore from it: the copy
is consistent (integrity, 操作履歴 hash chain), keeps the keys private, and
a server started on it has everything, including a revocation."""

import shutil
import stat
import tempfile
import threading
from pathlib import Path

from conftest import LOGIN_PW, start_server
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
        server.cli("cert", "revoke", "--login-id", "jirodt", "--reason", "key-compromise")

        # Logins (each writes its 操作履歴 row) keep coming while the backup runs.
        stop_load = threading.Event()
        logins = []

        def load():
            jar = str(work / "jar")
            while not stop_load.is_set():
                body = server.curl("-c", jar, "-b", jar, server.url + "/login").stdout.decode()
                got = server.curl("-c", jar, "-b", jar, "-o", "/dev/null", "-w", "%{http_code}",
                                  "--data-urlencode", f"csrf={form_csrf(body)}",
                                  "--data-urlencode", "login_id=hanakodt",
                                  "--data-urlencode", f"password={LOGIN_PW}", server.url + "/login")
                logins.append(got.stdout.decode())

        t = threading.Thread(target=load)
        t.start()
        try:
            out = server.cli("backup", "--out", str(restored_tmp / "data"))
        finally:
            stop_load.set()
            t.join(30)
        assert logins and all(code == "303" for code in logins), logins
        assert "操作履歴 hash chain ok" in out and "revoked certificates: 2" in out, out

        copy = restored_tmp / "data"
        assert (copy / "MANIFEST.txt").read_text() in out
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
        assert refused.returncode != 0, "the revocation is in the backup"
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
