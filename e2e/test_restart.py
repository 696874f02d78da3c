"""Neither a planned restart nor a crash logs anybody out: logged-in sessions
live in the database (by a hash of their ids, never the ids), so the next
start — or another server on the same database — serves them."""

import hashlib
import re
import shutil
import signal
import sqlite3
import tempfile
from pathlib import Path

from conftest import LOGIN_PW, start_server
from test_crash_safety import form_csrf


def login(server, jar, who):
    body = server.curl("-c", jar, "-b", jar, server.url + "/login").stdout.decode()
    got = server.curl("-c", jar, "-b", jar, "-L", "--data-urlencode", f"csrf={form_csrf(body)}",
                      "--data-urlencode", f"login_id={who}", "--data-urlencode", f"password={LOGIN_PW}",
                      server.url + "/login")
    return got.stdout.decode()


def page(server, jar, path):
    return server.curl("-c", jar, "-b", jar, "-L", server.url + path).stdout.decode()


def session_cookie(jar):
    for line in Path(jar).read_text().splitlines():
        fields = line.split("\t")
        if len(fields) == 7 and fields[5] == "__Host-shomei":
            return fields[6]
    raise AssertionError("no session cookie in the jar")


def test_a_graceful_restart_and_a_crash_keep_sessions(tmp_path):
    tmp = Path(tempfile.mkdtemp(prefix="shomei-restart-"))
    server = start_server(tmp)
    try:
        hanako, taro = str(tmp_path / "hanako.jar"), str(tmp_path / "taro.jar")
        assert "北銀 花子" in login(server, hanako, "hanakodt")
        assert "データ太郎" in login(server, taro, "tarodt")
        # A page with a form, for its CSRF token before the restart.
        before = page(server, hanako, "/brsk018")
        assert "BRSK018" in before

        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(20) == 0
        db = sqlite3.connect(tmp / "data" / "shomei.db")
        stored = {row[0] for row in db.execute("SELECT id_hash FROM sessions")}
        db.close()
        cookie = session_cookie(hanako)
        assert cookie not in stored, "the session id itself is never stored"
        assert hashlib.sha256(cookie.encode()).hexdigest() in stored

        server = start_server(tmp)
        readable = "the database is readable by other users; chmod 600 it"
        assert not any(readable in line for line in server.output), "0600: no warning"
        after = page(server, hanako, "/brsk018")
        assert "BRSK018" in after and "北銀 花子" in after, "still logged in after the restart"
        # The form's CSRF token from before the restart is still good: 並び順 再表示.
        csrf = form_csrf(before)
        got = server.curl("-c", hanako, "-b", hanako, "-L", "--data-urlencode", f"csrf={csrf}",
                          "--data-urlencode", "user=", server.url + "/brsk018").stdout.decode()
        assert "利用者を選択してください。" in got, got[:2000]

        # A crash loses no session either.
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(10)
        # Started on a database others may read: the start says so.
        (tmp / "data" / "shomei.db").chmod(0o644)
        server = start_server(tmp)
        assert any(readable in line for line in server.output), "".join(server.output)
        top = page(server, taro, "/top")
        assert "データ太郎" in top and not re.search(r"<h1[^>]*>ログイン", top), "still logged in after a crash"
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
