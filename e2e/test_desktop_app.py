"""The 証明書発行アプリ's window as the guide's clerk uses it, under Xvfb,
with the keyboard only (xdotool): downloaded from 証明書取得認証, unpacked,
set up with Enter ×4 in a fresh HOME, 証明書発行 for jirodt (未発行), and
Chromium with that HOME logs in by the certificate; 証明書更新 for tarodt
(更新可) replaces the old certificate in the stores (Chromium's and a Firefox
profile's), a revoked one leaving with it; wrong password, 発行済
and a server that is down are told on the screen. Every screen is
photographed into target/screenshots/app-*.png, and what it says is read
off the photograph (tesseract's Japanese OCR), beside a message that must
not be there (the previous refusal's).

Every wait is on an event: the window appearing (xdotool search --sync), a
line the app logs when a screen opens, a file, the process ending."""

import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from conftest import LOGIN_PW, SCREENSHOTS, launch
from test_cert_app import DEMO_P12_PW, chromium_logs_in_by_certificate, download_app

# A stop for a test that would otherwise hang; no step is timed against it.
PATIENCE = 120

# The messages the screens show (read off the photographs).
WRONG = "ログインIDまたはログインパスワードが正しくないか、ログインパスワードがロックされている"
ISSUED = "このログインIDには、有効な電子証明書が発行済です"
DOWN = "銀行のサーバーに接続できません"


@pytest.fixture(scope="module")
def display():
    """A private X server; its number is what Xvfb picks and tells us."""
    r, w = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(w), "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
                            pass_fds=(w,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(w)
    with os.fdopen(r) as f:
        number = f.readline().strip()
    assert number.isdigit(), "Xvfb did not start"
    yield f":{number}"
    proc.terminate()
    proc.wait(10)


class Window:
    """One run of the app: its log lines, its window, keys, photographs."""

    def __init__(self, exe, home, display, cwd=None, argv=None, env=None, find=None, shots="app"):
        """`argv` starts something else than `exe` itself (wine and the
        .exe), `env` adds to the environment, `find` are the xdotool search
        terms of its window (default: the process's own), `shots` the
        photographs' prefix."""
        self.display = display
        self.shots = shots
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("XDG_")}
        self.env.update({"HOME": str(home), "DISPLAY": display, "LANG": "C.UTF-8", **(env or {})})
        self.lines = []
        self.mark = 0  # the log's length when the last key was sent
        self.photographed = None  # the last photograph's pixels and mark
        self.changed = threading.Condition()
        self.proc = subprocess.Popen(argv or [str(exe)], cwd=cwd or home, env=self.env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        threading.Thread(target=self._pump, daemon=True).start()
        # --onlyvisible: the window must be mapped before it can take the
        # focus (X_SetInputFocus on one not yet viewable fails with BadMatch).
        found = self.xdotool("search", "--sync", "--onlyvisible", *(find or ["--pid", str(self.proc.pid)])).split()
        assert found, "no window"
        self.id = found[-1]
        self.xdotool("windowfocus", "--sync", self.id)

    def _pump(self):
        for line in self.proc.stderr:
            with self.changed:
                self.lines.append(line.rstrip("\n"))
                self.changed.notify_all()
        with self.changed:
            self.lines.append(None)
            self.changed.notify_all()

    def xdotool(self, *args):
        out = subprocess.run(["xdotool", *args], env=self.env, capture_output=True, text=True, timeout=PATIENCE)
        assert out.returncode == 0, out
        return out.stdout

    def wait_for(self, text, after=0):
        """Waits until the app logs a line containing `text` (after line number
        `after`); returns the line's index."""
        with self.changed:
            while True:
                for i in range(after, len(self.lines)):
                    if self.lines[i] is None:
                        raise AssertionError(f"the app ended before {text!r}:\n" + "\n".join(self.lines[:-1]))
                    if text in self.lines[i]:
                        return i
                assert self.changed.wait(PATIENCE), f"no {text!r} in:\n" + "\n".join(self.lines)

    def screen(self, name):
        """Waits for the screen `name` to open after the last key."""
        return self.wait_for(f"画面 {name}", self.mark)

    def focused(self, name):
        """Waits for the focus to reach `name` (a field's label or a button's)
        after the last key: what is typed before lands where it was."""
        return self.wait_for(f"フォーカス {name}", self.mark)

    def key(self, *keys):
        self.mark = len(self.lines)
        self.xdotool("key", "--clearmodifiers", *keys)

    def type(self, text):
        self.mark = len(self.lines)
        self.xdotool("type", "--clearmodifiers", "--delay", "30", text)

    def photo(self, name, shows=(), hides=()):
        """target/screenshots/app-NAME.png (the prefix is `shots`), once two
        photographs in a row agree (the window has drawn the screen it
        logged); fails when the window never settles, and when it shows the
        same picture as the last photograph taken after a key (a screen that
        was logged but never drawn). The photograph is then read (OCR):
        each text of `shows` must be on it, none of `hides`. A settled
        picture without the texts of `shows` may still be the screen before
        (logged at once, drawn a frame later: 処理中 stays still while the
        result is logged), so it is taken again until they are there, or it
        fails with what the screen says."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{self.shots}-{name}.png"
        deadline = time.monotonic() + PATIENCE
        while True:
            now = self.settled(name, deadline)
            path.write_bytes(png_of_ppm(now))
            text = screen_text(path) if shows or hides else ""
            missing = [want for want in shows if reads(text, want) < 0.8]
            if not missing:
                break
            assert time.monotonic() < deadline, f"{name}: {missing[0]!r} is not on the screen, which reads: {text}"
        if self.photographed is not None and self.photographed[1] != self.mark:
            assert now != self.photographed[0], f"{name}: the window shows what it showed before the last key"
        self.photographed = (now, self.mark)
        for unwanted in hides:
            assert reads(text, unwanted) < 0.7, f"{name}: {unwanted!r} is on the screen: {text}"
        return path

    def settled(self, name, deadline):
        """A photograph of the window once two in a row agree and it has
        drawn (one colour all over is a window not painted yet)."""
        last = None
        while True:
            now = subprocess.run(["import", "-window", self.id, "-depth", "8", "ppm:-"], env=self.env, check=True,
                                 capture_output=True, timeout=PATIENCE).stdout
            if now == last and not one_colour(now):
                return now
            last = now
            assert time.monotonic() < deadline, f"the window never settled for {name}"

    def authenticate(self, login_id, password):
        """証明書取得認証 with the keys: the ID, Tab, the password, Enter."""
        self.type(login_id)
        self.key("Tab")
        self.focused("ログインパスワード")
        self.type(password)
        self.key("Return")

    def setup_with_the_default_folder(self, read=False):
        """The guide's setup by keyboard: Enter ×4 with the default folder,
        each screen photographed (and, with `read`, its text read off the
        photograph), ending on 証明書取得 with no certificate."""
        self.wait_for("画面 セットアップ")
        said = lambda *texts: texts if read else ()
        self.photo("01-setup", shows=said("証明書発行アプリセットアップへようこそ"))
        for key, screen, photo, text in (
                ("Return", "インストール先フォルダー", "02-install-folder", "次のフォルダーにインストールします"),
                ("Return", "インストール確認", "03-install-confirm", "次の内容でインストールします"),
                ("Return", "完了", "04-setup-done", "証明書発行アプリのインストールが完了しました")):
            self.key(key)
            self.screen(screen)
            self.photo(photo, shows=said(text))
        self.key("Return")
        mark = self.screen("証明書取得")
        self.wait_for("証明書 0件", mark)
        self.photo("05-cert-top", shows=said("このパソコンには、この銀行の電子証明書はありません"))

    def exit_code(self):
        return self.proc.wait(PATIENCE)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def one_colour(ppm):
    """Whether a binary PPM's pixels are all of one colour."""
    head = re.match(rb"P6\s+(?:#[^\n]*\n\s*)*(\d+)\s+(\d+)\s+255\s", ppm)
    data = ppm[head.end():]
    return data == data[:3] * (len(data) // 3)


def png_of_ppm(ppm):
    """A binary PPM (P6, 8 bits: what `import ppm:-` writes; its bytes are
    the pixels alone, so two photographs compare) as a PNG file's bytes."""
    import struct
    import zlib
    head = re.match(rb"P6\s+(?:#[^\n]*\n\s*)*(\d+)\s+(\d+)\s+255\s", ppm)
    assert head, ppm[:40]
    width, height = int(head.group(1)), int(head.group(2))
    data = ppm[head.end():head.end() + width * height * 3]
    assert len(data) == width * height * 3, (width, height, len(data))
    rows = b"".join(b"\0" + data[y * width * 3:(y + 1) * width * 3] for y in range(height))
    chunk = lambda kind, body: (struct.pack(">I", len(body)) + kind + body
                                + struct.pack(">I", zlib.crc32(kind + body) & 0xffffffff))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows, 6)) + chunk(b"IEND", b""))


def screen_text(png):
    """The text on a photograph of the window, as tesseract reads it
    (Japanese, the picture doubled), without white space (it spaces CJK
    characters at random)."""
    big = subprocess.run(["convert", str(png), "-resize", "200%", "png:-"], capture_output=True, check=True,
                         timeout=PATIENCE).stdout
    out = subprocess.run(["tesseract", "stdin", "stdout", "-l", "jpn", "--psm", "3"], input=big,
                         capture_output=True, check=True, timeout=PATIENCE).stdout.decode()
    return re.sub(r"\s+", "", out)


def reads(text, phrase):
    """How well the best stretch of `text` reads as `phrase`, from 0 to 1
    (OCR mistakes a character here and there: 認証 read as 部証)."""
    import difflib
    phrase = re.sub(r"\s+", "", phrase)
    n = len(phrase)
    return max((difflib.SequenceMatcher(None, text[i:i + n], phrase).ratio()
                for i in range(max(1, len(text) - n + 1))), default=0.0)


def certutil(home, *args):
    return nss(home / ".pki/nssdb", *args)


def nss(db, *args):
    """certutil on the NSS database in the folder `db`."""
    return subprocess.run(["certutil", *args, "-d", f"sql:{db}"], capture_output=True, text=True,
                          timeout=PATIENCE)


def fresh_home(tmp_path, name):
    home = tmp_path / name
    home.mkdir()
    return home


def test_setup_and_issue_with_the_keyboard_then_chromium_logs_in_with_the_certificate(
        server, pw, browser, shot, tmp_path, display):
    # 証明書取得認証: the launch link, and no word of a terminal.
    page = browser.new_context(locale="ja-JP").new_page()
    page.goto(server.url + "/cert-issue")
    expect(page.get_by_role("link", name="証明書発行アプリの起動")).to_have_attribute("href", "shomei-cert://issue")
    body = page.locator("body").inner_text()
    assert "./shomei-cert" not in body and "端末" not in body and "ターミナル" not in body, body
    page.context.close()

    appdir = download_app(server, browser, shot, tmp_path)
    home = fresh_home(tmp_path, "home")
    app = Window(appdir / "shomei-cert", home, display)
    try:
        app.setup_with_the_default_folder(read=True)

        installed = home / ".local/share/shomei-cert"
        assert (installed / "shomei-cert").read_bytes() == (appdir / "shomei-cert").read_bytes()
        assert (installed / "shomei-cert.toml").is_file() and (installed / "root-ca.crt").is_file()
        entry = (home / ".local/share/applications/shomei-cert.desktop").read_text()
        assert "Name=証明書発行アプリ" in entry and "MimeType=x-scheme-handler/shomei-cert;" in entry, entry
        assert f'Exec="{installed}/shomei-cert" open %u' in entry, entry
        mime = (home / ".config/mimeapps.list").read_text()
        assert "x-scheme-handler/shomei-cert=shomei-cert.desktop" in mime, mime

        app.key("Return")
        app.screen("証明書取得認証")
        app.focused("ログインID")
        app.photo("06-auth", shows=["ログインIDとログインパスワードを入力して"], hides=[WRONG])
        app.type("jirodt")
        app.key("Tab")
        app.focused("ログインパスワード")
        app.type(LOGIN_PW)
        app.photo("07-auth-filled", shows=["ログインIDとログインパスワードを入力して", "jirodt"])
        app.key("Return")
        app.screen("結果")
        app.photo("09-result", shows=["電子証明書の取得が完了しました", "ログインIDjirodt", "証明書状態発行済"])
        app.key("Return")
        assert app.exit_code() == 0
    finally:
        app.stop()
    log = "\n".join(line for line in app.lines if line)
    for step in ["処理 個人認証", "処理 証明書取得", "処理 処理中", "処理 取得完了"]:
        assert step in log, log

    listing = certutil(home, "-L").stdout
    nick = re.search(r"^(Shomei jirodt [0-9a-f]+)\s+u,u,u$", listing, re.M)
    assert nick, listing
    assert re.search(r"Root CA.*\sC,,", listing), listing  # the bank's root, trusted for web sites
    keys = certutil(home, "-K").stdout
    assert nick.group(1) in keys, keys
    kept = list((home / ".local/share/shomei-cert-renewal").iterdir())
    assert len(kept) == 1 and oct(kept[0].stat().st_mode & 0o777) == "0o600"

    # Headless Chromium with that HOME: the certificate method logs in.
    chromium_logs_in_by_certificate(pw, server, home, "jirodt", shot, "app")


def expired_p12(server, out, login_id):
    """A certificate of this bank's for `login_id` that expired a month ago,
    with its key, as a PKCS#12 file (password DEMO_P12_PW): signed with the
    issuing CA's key file, as the CA signed its certificates then."""
    from datetime import datetime, timedelta, timezone

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    ca = server.data_dir / "ca"
    issuing = x509.load_pem_x509_certificate((ca / "issuing-ca.crt").read_bytes())
    root = x509.load_pem_x509_certificate((ca / "root-ca.crt").read_bytes())
    ca_key = serialization.load_pem_private_key((ca / "issuing-ca.key").read_bytes(), None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, login_id)]))
            .issuer_name(issuing.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=400))
            .not_valid_after(now - timedelta(days=35))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256()))
    pem = out.with_suffix(".pem")
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())
                    + b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (cert, issuing, root)))
    # The certificates unencrypted, the key under PBES2 (what the app reads).
    made = subprocess.run(["openssl", "pkcs12", "-export", "-in", str(pem), "-out", str(out), "-certpbe", "NONE",
                           "-keypbe", "AES-256-CBC", "-macalg", "sha256", "-passout", f"pass:{DEMO_P12_PW}"],
                          capture_output=True, text=True, timeout=PATIENCE)
    assert made.returncode == 0, made
    pem.unlink()


def installed_copy(server, browser, shot, tmp_path, home):
    """The download, set up with `shomei-cert install` (the window's setup
    is the test above)."""
    appdir = download_app(server, browser, shot, tmp_path / "download")
    env = {**os.environ, "HOME": str(home)}
    env = {k: v for k, v in env.items() if not k.startswith("XDG_")}
    done = subprocess.run([str(appdir / "shomei-cert"), "install"], env=env, capture_output=True, text=True,
                          timeout=PATIENCE)
    assert done.returncode == 0, done
    return home / ".local/share/shomei-cert", env


def test_tarodt_renews_with_the_button_and_the_old_certificate_leaves_the_store(
        server, browser, shot, tmp_path, display):
    """The README: the certificate goes into ~/.pki/nssdb "and every Firefox
    profile's database", and afterwards the app removes this bank's older
    certificates ("the same user's superseded ones, and expired or revoked
    ones") from those stores. A Firefox profile is there before; the store
    holds tarodt's certificate of a year ago, hottojr02's, revoked since,
    and one of ichirodt's that expired a month ago (each with its key, in
    both databases)."""
    home = fresh_home(tmp_path, "home")
    (tmp_path / "download").mkdir()
    firefox = home / ".mozilla/firefox/a1b2c3d4.default-release"
    firefox.mkdir(parents=True)
    made = subprocess.run(["certutil", "-N", "-d", f"sql:{firefox}", "--empty-password"], capture_output=True,
                          text=True, timeout=PATIENCE)
    assert made.returncode == 0, made
    installed, env = installed_copy(server, browser, shot, tmp_path, home)
    server.cli("cert", "revoke", "--login-id", "hottojr02", "--reason", "key-compromise")
    expired_p12(server, tmp_path / "ichirodt.p12", "ichirodt")
    serials = {}
    for who, p12 in [("tarodt", server.data_dir / "demo-certs" / "tarodt.p12"),
                     ("hottojr02", server.data_dir / "demo-certs" / "hottojr02.p12"),
                     ("ichirodt", tmp_path / "ichirodt.p12")]:
        got = subprocess.run([str(installed / "shomei-cert"), "import", "--p12", str(p12)],
                             env={**env, "SHOMEI_P12_PASSWORD": DEMO_P12_PW}, capture_output=True, text=True,
                             timeout=PATIENCE)
        assert got.returncode == 0, got
        serials[who] = re.search(r"シリアル ([0-9a-f]+)", got.stdout).group(1)
    old = serials["tarodt"]
    for db in (home / ".pki/nssdb", firefox):
        listing = nss(db, "-L").stdout
        assert all(f"Shomei {who} {serials[who]}" in listing for who in serials), listing

    app = Window(installed / "shomei-cert", home, display)
    try:
        mark = app.wait_for("画面 証明書取得")
        app.wait_for("証明書 3件（更新可 1件）", mark)
        app.photo("10-cert-top-renewable", shows=["更新可の電子証明書があります", "tarodt更新可"])
        app.key("Return")
        app.screen("結果")
        # The result lists what left the stores (the table reads by columns
        # once that list is long).
        app.photo("11-renewed", shows=["電子証明書の取得が完了しました", "旧証明書", "失効済"])
        app.key("Return")
        assert app.exit_code() == 0
    finally:
        app.stop()
    # In both stores: the new certificate with its key, and nothing else of
    # the bank's: the superseded, the revoked and the expired one are gone,
    # keys and all.
    new = None
    for db in (home / ".pki/nssdb", firefox):
        listing = nss(db, "-L").stdout
        tarodt = re.findall(r"^Shomei tarodt ([0-9a-f]+)\s+u,u,u$", listing, re.M)
        assert len(tarodt) == 1 and tarodt[0] != old, (db, listing)
        assert new in (None, tarodt[0]), "the same certificate in both"
        new = tarodt[0]
        assert not re.search(r"^Shomei (hottojr02|ichirodt) ", listing, re.M), (db, listing)
        assert nss(db, "-L", "-n", f"Shomei tarodt {old}").returncode != 0, db
        keys = nss(db, "-K").stdout
        assert all(serials[who] not in keys for who in serials) and new in keys, (db, keys)
    state = server.curl(f"{server.url}/pki/cert-status?serial={new}").stdout.decode()
    assert '"code":"issued"' in state.replace(" ", ""), state


class Stalling:
    """A server that takes connections and answers nothing, until let go;
    then nothing listens there at all."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.held = []
        self.taken = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(c)
            self.taken.set()

    def let_go(self):
        # shutdown wakes the accept() of the other thread; close alone would not.
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        for c in self.held:
            c.close()


def test_wrong_password_issued_and_server_down_are_told_on_the_screen(server, browser, shot, tmp_path, display):
    home = fresh_home(tmp_path, "home")
    (tmp_path / "download").mkdir()
    installed, _ = installed_copy(server, browser, shot, tmp_path, home)
    app = Window(installed / "shomei-cert", home, display)
    try:
        app.wait_for("画面 証明書取得")
        app.key("Return")
        app.screen("証明書取得認証")
        app.authenticate("ichirodt", "Wrong#Password9")
        line = app.wait_for("エラー ログインIDまたはログインパスワードが正しくない")
        app.wait_for("画面 証明書取得認証", line)
        app.photo("20-error-wrong-password", shows=[WRONG], hides=[ISSUED])
        # The ID field has the focus again: select it all and type another.
        app.key("ctrl+a")
        app.authenticate("hanakodt", LOGIN_PW)
        line = app.wait_for("エラー このログインIDには、有効な電子証明書が発行済です", line + 1)
        app.wait_for("画面 証明書取得認証", line)
        app.photo("21-error-already-issued", shows=[ISSUED], hides=[WRONG])
        # Tab ×3 reaches 中断; then Tab to 閉じる and Enter.
        app.key("Tab", "Tab", "Tab", "Return")
        app.screen("証明書取得")
        app.key("Tab", "Return")
        assert app.exit_code() == 0
    finally:
        app.stop()
    assert not list((home / ".local/share").glob("shomei-cert-renewal/*")), "nothing is kept after a refusal"

    # The server down: first it takes the connection and says nothing
    # (処理中 stays on the screen), then nothing listens at all.
    stalling = Stalling()
    config = installed / "shomei-cert.toml"
    text = config.read_text()
    config.write_text(re.sub(r'^server = ".*"$', f'server = "https://127.0.0.1:{stalling.port}"', text, flags=re.M))
    app = Window(installed / "shomei-cert", home, display)
    try:
        app.wait_for("画面 証明書取得")
        app.key("Return")
        app.screen("証明書取得認証")
        app.authenticate("jirodt", LOGIN_PW)
        mark = app.screen("処理中")
        app.wait_for("処理 証明書取得", mark)
        assert stalling.taken.wait(PATIENCE)
        app.photo("08-working", shows=["電子証明書を取得しています。このままお待ちください"], hides=[DOWN])
        stalling.let_go()
        line = app.wait_for("エラー 銀行のサーバーに接続できません", mark)
        app.wait_for("画面 証明書取得認証", line)
        app.key("ctrl+a")
        app.authenticate("jirodt", LOGIN_PW)
        line = app.wait_for("エラー 銀行のサーバーに接続できません", line + 1)
        assert "Connection refused" in app.lines[line], app.lines[line]
        app.wait_for("画面 証明書取得認証", line)
        app.photo("22-error-server-down", shows=[DOWN], hides=[ISSUED])
    finally:
        app.stop()
        config.write_text(text)
    assert certutil(home, "-L").returncode == 0 and "Shomei jirodt" not in certutil(home, "-L").stdout


def test_without_a_desktop_the_app_says_so_in_japanese(server, browser, shot, tmp_path):
    appdir = download_app(server, browser, shot, tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "WAYLAND_SOCKET")}
    for extra, code in [({}, 2), ({"DISPLAY": ":9999"}, 5)]:
        out = subprocess.run([str(appdir / "shomei-cert")], env={**env, "HOME": str(tmp_path), **extra},
                             capture_output=True, text=True, timeout=PATIENCE)
        assert out.returncode == code, out
        assert "画面を開けません" in out.stderr.splitlines()[-1], out.stderr
