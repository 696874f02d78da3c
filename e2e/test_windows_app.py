"""The 証明書発行アプリ on Windows, under wine and Xvfb, as the guide's clerk
uses it: 証明書取得認証 hands a Windows browser the bank's setup (one .exe,
made from the Windows build with the bank's configuration inside) and a
Linux browser still the Linux app; the setup runs with Enter ×4 and the
default folder under %LOCALAPPDATA%\\Programs; the shomei-cert: link, the
「アプリと機能」 entry and the Start-menu shortcut are there (`wine reg`);
証明書発行 for jirodt puts the certificate into CurrentUser\\My with a key
that signs and cannot be exported (e2e/win/storecheck.c, a program of our
own, looks as any other program would) and logs in with it at the
certificate listener through WinHTTP and schannel (e2e/win/certlogin.c);
証明書更新 for jirodt replaces its
certificate there; 「アンインストール」 removes the app, its shortcut and its
registry entries. The .msi installs per machine with msiexec, the
program starts there without the setup, a shomei-cert: link opened by the
shell (wine's start) brings up its window, and msiexec /x removes it (under
wine the .msi's Start-menu shortcut is not made: CreateShortcuts ends with
success and writes no file, so it is not asserted). Every screen is
photographed into
target/screenshots/win-*.png.

Each test has a wine prefix of its own in a temporary folder, with the
tests-only bcryptprimitives.dll (e2e/win/bcryptprimitives.c: wine 8 lacks
the ProcessPrng that Rust's standard library imports) in its system32 and
Debian's Noto Sans CJK in its Fonts (a fresh prefix has no font at all;
every Windows 10/11 has Yu Gothic UI). Every wait is on an event: the
window appearing, a line the app logs, a process ending."""

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import BINARY, LOGIN_PW, ROOT, start_server
from test_cert_app import DEMO_P12_PW, download_app
from test_desktop_app import PATIENCE, Window, display  # noqa: F401 (a fixture)

WINE = "/usr/lib/wine/wine64"
WINESERVER = "/usr/lib/wine/wineserver"
WIN_EXE = ROOT / "target" / "windows" / "x86_64-pc-windows-gnu" / "release" / "shomei-cert.exe"
CJK_FONT = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
WINDOWS_EDGE = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0")
CLASSES_KEY = r"HKCU\Software\Classes\shomei-cert"
UNINSTALL_KEY = r"HKCU\Software\Microsoft\Windows\CurrentVersion\Uninstall\shomei-cert"
SETUP = "shomei-cert-setup.exe"
MSI = "shomei-cert.msi"
SIGN_PW = "Sign#Test1"
# The window's title starts with the app's name on every screen.
FIND = ["--onlyvisible", "--name", "^証明書発行アプリ"]


def run(*args, **kw):
    out = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=PATIENCE, **kw)
    assert out.returncode == 0, out
    return out.stdout


@pytest.fixture(scope="module")
def helpers():
    """The tests' Windows programs, built with mingw: the ProcessPrng
    forwarder and the store checker. Never shipped."""
    out = Path(tempfile.mkdtemp(prefix="shomei-win-helpers-"))
    src = ROOT / "e2e" / "win"
    run("x86_64-w64-mingw32-gcc", "-shared", "-O2", "-o", out / "bcryptprimitives.dll",
        src / "bcryptprimitives.c", "-lbcrypt")
    run("x86_64-w64-mingw32-gcc", "-O2", "-o", out / "storecheck.exe", src / "storecheck.c", "-lcrypt32",
        "-ladvapi32")
    run("x86_64-w64-mingw32-gcc", "-O2", "-o", out / "certlogin.exe", src / "certlogin.c", "-lwinhttp", "-lcrypt32")
    yield out
    shutil.rmtree(out, ignore_errors=True)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class WinServer:
    """The demo server, started from a folder of its own: the bank's
    Windows setup is placed beside the binary there (as the README tells
    the bank's administrator) once the server runs and its address is known.
    Its ports stay the same across a restart: the setup names them."""

    def __init__(self):
        assert WIN_EXE.is_file(), "build the Windows app first: scripts/build-windows"
        self.tmp = Path(tempfile.mkdtemp(prefix="shomei-e2e-win-"))
        self.bindir = self.tmp / "bin"
        self.bindir.mkdir()
        for name in ["shomei", "shomei-cert"]:
            shutil.copy2(BINARY.parent / name, self.bindir / name)
        self.ports = [free_port() for _ in range(4)]
        self.start()

    def start(self, config=None):
        portal, cert, pki, metrics = self.ports
        self.s = start_server(self.tmp, "--cert-listen", f"127.0.0.1:{cert}", "--pki-listen", f"127.0.0.1:{pki}",
                              "--metrics-listen", f"127.0.0.1:{metrics}", config=config,
                              binary=self.bindir / "shomei", listen=f"127.0.0.1:{portal}")

    def stop(self):
        self.s.proc.terminate()
        try:
            self.s.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.s.proc.kill()

    def __getattr__(self, name):
        return getattr(self.s, name)


@pytest.fixture(scope="module")
def server():
    s = WinServer()
    yield s
    s.stop()
    shutil.rmtree(s.tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def signing(tmp_path_factory):
    """A test code-signing certificate and key (PKCS#12), as a bank's would be."""
    d = Path(tempfile.mkdtemp(prefix="shomei-win-sign-"))
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", d / "key.pem", "-out",
        d / "cert.pem", "-subj", "/CN=Shomei test bank code signing", "-days", "30", "-addext",
        "extendedKeyUsage=codeSigning", "-addext", "keyUsage=digitalSignature")
    run("openssl", "pkcs12", "-export", "-inkey", d / "key.pem", "-in", d / "cert.pem", "-out", d / "sign.p12",
        "-passout", f"pass:{SIGN_PW}")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def windows_app(out, appdir, *sign, env=None):
    """scripts/windows-app, the README's command, on the Windows build."""
    return run(ROOT / "scripts" / "windows-app", "--exe", WIN_EXE, "--config", appdir / "shomei-cert.toml",
               "--root-ca", appdir / "root-ca.crt", "--out", out, *sign,
               env={**os.environ, "SHOMEI_SIGN_PASSWORD": SIGN_PW, **(env or {})})


@pytest.fixture(scope="module")
def made(server, browser, shot, signing):
    """The bank's Windows files, made by scripts/windows-app from the
    Windows build and the two files the Linux download carries (this
    server's shomei-cert.toml and root certificate), signed with the test
    key and placed beside the server binary; an unsigned pair beside."""
    work = Path(tempfile.mkdtemp(prefix="shomei-win-setup-"))
    try:
        appdir = download_app(server, browser, shot, work)
        windows_app(server.bindir, appdir, "--sign-p12", signing / "sign.p12")
        windows_app(work / "unsigned", appdir)
        yield {"setup": server.bindir / SETUP, "msi": server.bindir / MSI, "unsigned": work / "unsigned",
               "config": (appdir / "shomei-cert.toml").read_text()}
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def setup_exe(made):
    return made["setup"]


class Prefix:
    """A wine prefix of its own: a fresh Windows user profile."""

    def __init__(self, helpers, display, font=True):
        """`font`: Debian's Noto Sans CJK in the prefix's Fonts, as every
        Windows 10/11 has Yu Gothic; without it the prefix has no font at all."""
        self.tmp = Path(tempfile.mkdtemp(prefix="shomei-wine-"))
        self.path = self.tmp / "prefix"
        self.env = {"WINEPREFIX": str(self.path), "WINEDEBUG": "-all", "WINEDLLOVERRIDES": "mscoree,mshtml=",
                    "DISPLAY": display}
        run(WINE, "wineboot", "-i", env={**os.environ, **self.env})
        system32 = self.path / "drive_c" / "windows" / "system32"
        shutil.copy(helpers / "bcryptprimitives.dll", system32 / "bcryptprimitives.dll")
        if font:
            shutil.copy(CJK_FONT, self.path / "drive_c" / "windows" / "Fonts" / CJK_FONT.name)
        self.storecheck = helpers / "storecheck.exe"
        self.certlogin = helpers / "certlogin.exe"
        self.user = Path(next((self.path / "drive_c" / "users").glob("*/AppData/Local")).parent.parent)

    def run(self, *args, env=None, check=True):
        out = subprocess.run([WINE, *[str(a) for a in args]], env={**os.environ, **self.env, **(env or {})},
                             capture_output=True, timeout=PATIENCE, stdin=subprocess.DEVNULL, encoding="utf-8",
                             errors="replace")
        if check:
            assert out.returncode == 0, out
        return out

    def reg(self, key):
        """The key and everything under it, as `reg export` writes it (UTF-16,
        so Japanese values arrive intact): {key path: {value name: value}},
        "@" the default value; None when the key is not there."""
        file = self.tmp / "export.reg"
        file.unlink(missing_ok=True)
        out = self.run("reg", "export", key, windows_path(file), "/y", check=False)
        if out.returncode != 0:
            assert "Unable to find the specified registry key" in out.stderr + out.stdout, out
            return None
        keys, values = {}, None
        for line in file.read_bytes().decode("utf-16").splitlines():
            if line.startswith("[") and line.endswith("]"):
                values = keys.setdefault(line[1:-1], {})
                continue
            m = re.fullmatch(r'(@|"((?:[^"\\]|\\.)*)")=(.*)', line)
            if m:
                name = "@" if m.group(1) == "@" else unescape(m.group(2))
                v = m.group(3)
                values[name] = unescape(v[1:-1]) if v.startswith('"') else v
        return keys

    def store(self):
        """CurrentUser\\My as storecheck sees it: (friendly name, certificate
        DER, export policy, signing) per certificate with a key."""
        out = self.run(self.storecheck).stdout
        rows = []
        for line in out.splitlines():
            assert line.startswith("cert "), out
            name, der, export, sign = line[len("cert "):].split("\t")
            rows.append((name, bytes.fromhex(der), export, sign))
        return rows

    def window(self, argv, shots="win", env=None):
        return Window(None, self.tmp, self.env["DISPLAY"], cwd=self.tmp, argv=[WINE, *map(str, argv)],
                      env={**self.env, **(env or {})}, find=FIND, shots=shots)

    def close(self):
        subprocess.run([WINESERVER, "-k"], env={**os.environ, **self.env}, capture_output=True, timeout=PATIENCE)
        subprocess.run([WINESERVER, "-w"], env={**os.environ, **self.env}, capture_output=True, timeout=PATIENCE)
        shutil.rmtree(self.tmp, ignore_errors=True)


def unescape(s):
    """A string of a .reg file as it is in the registry."""
    return re.sub(r"\\(.)", r"\1", s)


def windows_path(p):
    return "Z:" + str(p).replace("/", "\\")


@pytest.fixture
def prefix(helpers, display):
    p = Prefix(helpers, display)
    yield p
    p.close()


def cert_of(der, workdir):
    """Subject, serial (hex) and issuer of a DER certificate, by openssl."""
    f = workdir / "cert.der"
    f.write_bytes(der)
    text = run("openssl", "x509", "-inform", "DER", "-in", f, "-noout", "-subject", "-serial", "-issuer")
    return text


def serial_of(der, workdir):
    return re.search(r"serial=([0-9A-F]+)", cert_of(der, workdir)).group(1).lower().lstrip("0")


def cert_state(server, serial):
    return server.curl(f"{server.url}/pki/cert-status?serial={serial}").stdout.decode().replace(" ", "")


def test_the_windows_browser_gets_the_signed_setup_and_the_linux_one_the_linux_app(server, browser, made,
                                                                                  signing, shot, tmp_path):
    page = browser.new_context(locale="ja-JP", user_agent=WINDOWS_EDGE, accept_downloads=True).new_page()
    page.goto(server.url + "/cert-issue")
    shot(page, "cert-issue-download-windows")
    body = page.locator("body").inner_text()
    assert SETUP in body and "Windows 用の証明書発行アプリは、現在ご用意できておりません" not in body, body
    assert page.locator("#unsigned").count() == 0, body
    with page.expect_download() as d:
        page.get_by_role("link", name="証明書発行アプリのダウンロード").click()
    assert d.value.suggested_filename == SETUP
    got = tmp_path / SETUP
    d.value.save_as(got)
    assert got.read_bytes() == made["setup"].read_bytes()
    with page.expect_download() as d:
        page.get_by_role("link", name=re.compile(r"\.msi")).click()
    assert d.value.suggested_filename == MSI
    assert Path(d.value.path()).read_bytes() == made["msi"].read_bytes()
    page.context.close()

    # Authenticode: both verify with the bank's certificate; one byte
    # changed in the bank's part of the setup, and the signature fails.
    for f in [got, made["msi"]]:
        ok = subprocess.run(["osslsigncode", "verify", "-CAfile", signing / "cert.pem", "-in", f],
                            capture_output=True, text=True, timeout=PATIENCE)
        assert ok.returncode == 0 and "Signature verification: ok" in ok.stdout, ok
    data = bytearray(got.read_bytes())
    at = bytes(data).rindex(b"server = ")
    data[at] ^= 0x20
    bad = tmp_path / "tampered.exe"
    bad.write_bytes(bytes(data))
    no = subprocess.run(["osslsigncode", "verify", "-CAfile", signing / "cert.pem", "-in", bad],
                        capture_output=True, text=True, timeout=PATIENCE)
    assert no.returncode != 0 and "MISMATCH" in no.stdout + no.stderr, no
    # Stripped: no symbol table left in the shipped file.
    sizes = {f: (made["unsigned"] / f).stat().st_size for f in [SETUP, MSI]}
    print(f"\nWindows files: {SETUP} {sizes[SETUP] / 1e6:.1f} MB, {MSI} {sizes[MSI] / 1e6:.1f} MB "
          f"(the unstripped build: {WIN_EXE.stat().st_size / 1e6:.1f} MB)")
    assert sizes[SETUP] < WIN_EXE.stat().st_size

    # Unsigned files: the page says Windows may warn before opening them.
    saved = made["setup"].read_bytes()
    try:
        shutil.copy(made["unsigned"] / SETUP, made["setup"])
        page = browser.new_context(locale="ja-JP", user_agent=WINDOWS_EDGE).new_page()
        page.goto(server.url + "/cert-issue")
        shot(page, "cert-issue-download-windows-unsigned")
        assert "Windows が「WindowsによってPCが保護されました」" in page.locator("#unsigned").inner_text()
        page.context.close()
    finally:
        made["setup"].write_bytes(saved)

    # A Linux browser on the same server still gets the Linux app.
    page = browser.new_context(locale="ja-JP", accept_downloads=True).new_page()
    page.goto(server.url + "/cert-issue")
    with page.expect_download() as d:
        page.get_by_role("link", name="証明書発行アプリのダウンロード").click()
    assert d.value.suggested_filename == "shomei-cert.tar", d.value.suggested_filename
    page.context.close()


def test_setup_by_keyboard_issue_into_the_store_renew_and_uninstall(server, setup_exe, prefix, tmp_path):
    installed = prefix.user / "AppData" / "Local" / "Programs" / "shomei-cert"
    shortcut = prefix.user / "AppData/Roaming/Microsoft/Windows/Start Menu/Programs/証明書発行アプリ.lnk"
    # 「キャンセル」 at each step of the setup (Tab reaches it) leaves nothing.
    for steps, name in [([], "セットアップ"), (["Return"], "インストール先フォルダー"),
                        (["Return", "Return"], "インストール確認")]:
        app = prefix.window([setup_exe])
        try:
            app.wait_for("画面 セットアップ")
            for k in steps:
                app.key(k)
            app.screen(name)
            # The folder field, 次へ, then キャンセル; elsewhere the next button.
            app.key(*["Tab"] * (2 if name == "インストール先フォルダー" else 1))
            app.focused("キャンセル")
            app.key("Return")
            assert app.exit_code() == 0
        finally:
            app.stop()
        assert not installed.exists() and not shortcut.exists(), name
        assert prefix.reg(CLASSES_KEY) is None and prefix.reg(UNINSTALL_KEY) is None, name

    started = time.monotonic()
    app = prefix.window([setup_exe])
    try:
        app.setup_with_the_default_folder()

        exe = installed / "shomei-cert.exe"
        # One file: the bank's configuration rides inside the copy.
        assert exe.read_bytes() == setup_exe.read_bytes()
        assert sorted(p.name for p in installed.iterdir()) == [".shomei-cert-installed", "NotoSansCJK-LICENSE.txt",
                                                               "shomei-cert.exe"]
        assert "SIL OPEN FONT LICENSE" in (installed / "NotoSansCJK-LICENSE.txt").read_text()
        win_exe = "C:\\users\\" + prefix.user.name + r"\AppData\Local\Programs\shomei-cert\shomei-cert.exe"
        link = prefix.reg(CLASSES_KEY)
        root = "HKEY_CURRENT_USER" + CLASSES_KEY[len("HKCU"):]
        assert link[root] == {"@": "URL:shomei-cert (証明書発行アプリ)", "URL Protocol": ""}, link
        assert link[root + r"\shell\open\command"] == {"@": f'"{win_exe}" open "%1"'}, link
        entry = prefix.reg(UNINSTALL_KEY)["HKEY_CURRENT_USER" + UNINSTALL_KEY[len("HKCU"):]]
        assert entry["DisplayName"] == "証明書発行アプリ" and entry["UninstallString"] == f'"{win_exe}" uninstall', entry
        assert entry["InstallLocation"] == win_exe.rsplit("\\", 1)[0], entry
        assert win_exe.encode("utf-16-le") in shortcut.read_bytes()

        app.key("Return")
        app.screen("証明書取得認証")
        app.focused("ログインID")
        app.photo("06-auth")
        app.type("jirodt")
        app.key("Tab")
        app.focused("ログインパスワード")
        app.type(LOGIN_PW)
        app.photo("07-auth-filled")
        app.key("Return")
        app.screen("結果")
        issued_in = time.monotonic() - started
        app.photo("09-result")
        app.key("Return")
        assert app.exit_code() == 0
    finally:
        app.stop()
    log = "\n".join(line for line in app.lines if line)
    for step in ["処理 個人認証", "処理 証明書取得", "処理 処理中", "処理 取得完了"]:
        assert step in log, log
    print(f"\nsetup to issued under wine: {issued_in:.1f} s")

    # Another program on the PC finds it in CurrentUser\My: a key that signs
    # and that neither its policy nor CryptExportKey lets out.
    [(name, der, export, sign)] = prefix.store()
    assert re.fullmatch(r"Shomei jirodt [0-9a-f]+（.+）", name), name
    assert export == "not-exportable,export-refused" and sign == "signs", (export, sign)
    subject = cert_of(der, tmp_path)
    assert "CN=jirodt" in subject.replace(" ", ""), subject
    jirodt = serial_of(der, tmp_path)
    assert name.startswith(f"Shomei jirodt {jirodt}"), (name, jirodt)
    assert '"code":"issued"' in cert_state(server, jirodt)

    # 電子証明書方式 login through Windows' own TLS (WinHTTP over schannel,
    # as Edge): the certificate from the store is presented, the listener
    # names jirodt, and the password ends on the top page.
    cert_port = server.ports[1]
    out = prefix.run(prefix.certlogin, cert_port, LOGIN_PW, "Shomei jirodt ", check=False)
    lines = out.stdout.splitlines()
    print(f"\nschannel login: {[line[:200] for line in lines]} {out.stderr[-500:]}")
    assert out.returncode == 0, out
    get, post, top = lines
    assert get.startswith("get 200\t") and 'id="cert-login-id">jirodt<' in get, get[:2000]
    assert post == "post 303\t/top", post
    assert top.startswith("top 200\t") and "トップページ" in top and "jirodt" in top, top[:2000]

    # Refusals on the screen, in the Linux app's words: a wrong password,
    # then 発行済 (hanakodt); 中断 and 閉じる leave the store as it was.
    app = prefix.window([exe])
    try:
        mark = app.wait_for("画面 証明書取得")
        app.wait_for("証明書 1件（更新可 0件）", mark)
        app.key("Return")
        app.screen("証明書取得認証")
        app.focused("ログインID")
        app.authenticate("ichirodt", "Wrong#Password9")
        line = app.wait_for("エラー ログインIDまたはログインパスワードが正しくない")
        app.wait_for("フォーカス ログインID", line)
        app.photo("20-error-wrong-password")
        app.key("ctrl+a")
        app.authenticate("hanakodt", LOGIN_PW)
        line = app.wait_for("エラー このログインIDには、有効な電子証明書が発行済です", line + 1)
        app.wait_for("フォーカス ログインID", line)
        app.photo("21-error-already-issued")
        app.key("Tab", "Tab", "Tab")
        app.focused("中断")
        app.key("Return")
        app.screen("証明書取得")
        app.key("Tab")
        app.focused("閉じる")
        app.key("Return")
        assert app.exit_code() == 0
    finally:
        app.stop()
    assert [r[0] for r in prefix.store()] == [name]

    # Installing again (the setup's command line, over the copy) replaces
    # an older copy whole.
    exe.write_bytes(b"an older version")
    prefix.run(setup_exe, "install")
    assert exe.read_bytes() == setup_exe.read_bytes()

    # A P-256 certificate from another PC (tarodt's, as the demo made it)
    # cannot go into CryptoAPI's RSA store: told, and nothing is added.
    demo = server.data_dir / "demo-certs" / "tarodt.p12"
    ec = prefix.run(exe, "import", "--p12", windows_path(demo), env={"SHOMEI_P12_PASSWORD": DEMO_P12_PW},
                    check=False)
    assert ec.returncode == 5 and "not an RSA key" in ec.stderr and "何も保存されていません" in ec.stderr, ec
    assert len(prefix.store()) == 1

    # 証明書更新: months later (the server restarted with a renewal window
    # wider than the time jirodt's certificate has left), the window offers
    # it; the new certificate replaces the old one in the store.
    config = tmp_path / "later.toml"
    config.write_text("[settings]\ncert_validity_days = 1000\nrenewal_window_days = 400\n")
    server.stop()
    server.start(config=config)
    app = prefix.window([exe])
    try:
        mark = app.wait_for("画面 証明書取得")
        app.wait_for("証明書 1件（更新可 1件）", mark)
        app.photo("10-cert-top-renewable")
        app.key("Return")
        app.screen("結果")
        app.photo("11-renewed")
        app.key("Return")
        assert app.exit_code() == 0
    finally:
        app.stop()
    rows = prefix.store()
    assert len(rows) == 1, [(n, serial_of(d, tmp_path), e, s) for n, d, e, s in rows]
    [(name, der, export, sign)] = rows
    new = serial_of(der, tmp_path)
    assert new != jirodt and name.startswith(f"Shomei jirodt {new}"), rows
    assert export == "not-exportable,export-refused" and sign == "signs", rows
    assert '"code":"issued"' in cert_state(server, new)
    assert '"code":"issued"' not in cert_state(server, jirodt)

    # 「アンインストール」 runs the entry's UninstallString: the folder, the
    # shortcut and both registry keys go; the certificates stay (they are
    # the user's, for logging in; the bank revokes them).
    uninstall = re.fullmatch(r'"(.*)" uninstall', entry["UninstallString"]).group(1)
    done = prefix.run(uninstall, "uninstall")
    assert "アンインストールしました" in done.stdout, done
    assert prefix.reg(CLASSES_KEY) is None and prefix.reg(UNINSTALL_KEY) is None
    assert not shortcut.exists()
    # The folder goes once the uninstalling program has ended.
    deadline = time.monotonic() + PATIENCE
    while installed.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not installed.exists(), list(installed.iterdir())
    assert len(prefix.store()) == 1


def test_the_msi_installs_for_the_machine_and_its_removal_leaves_nothing(server, made, prefix):
    """The .msi as an IT department deploys it (msiexec, quiet; wine runs it
    as the administrator a real deployment needs): the same program under
    Program Files, started there without the setup, the shomei-cert: link
    under HKLM; msiexec /x removes both."""
    msi = windows_path(made["msi"])
    prefix.run("msiexec", "/i", msi, "/qn")
    exe = prefix.path / "drive_c" / "Program Files" / "shomei-cert" / "shomei-cert.exe"
    assert exe.read_bytes() == made["setup"].read_bytes()
    key = r"HKLM\Software\Classes\shomei-cert"
    link = prefix.reg(key)
    assert link["HKEY_LOCAL_MACHINE" + key[len("HKLM"):] + r"\shell\open\command"] == {
        "@": r'"C:\Program Files\shomei-cert\shomei-cert.exe" open "%1"'}, link
    app = prefix.window([exe])
    try:
        app.wait_for("画面 証明書取得")
        assert not any("画面 セットアップ" in line for line in app.lines if line)
        app.photo("30-msi-installed-top")
        app.key("Tab")
        app.focused("閉じる")
        app.key("Return")
        assert app.exit_code() == 0
    finally:
        app.stop()
    # 「証明書発行アプリの起動」: the shell opens a shomei-cert: link with the
    # registered command (wine's start, as a browser hands it over); the
    # app's window comes up on 証明書取得 (its log stays with start, so the
    # window's title tells the screen).
    link = prefix.window(["start", "shomei-cert://issue"])
    try:
        deadline = time.monotonic() + PATIENCE
        while link.xdotool("getwindowname", link.id).strip() != "証明書発行アプリ - 証明書取得":
            assert time.monotonic() < deadline, link.xdotool("getwindowname", link.id)
            time.sleep(0.2)
        link.photo("31-opened-by-link")
    finally:
        link.stop()
        prefix.run("taskkill", "/f", "/im", "shomei-cert.exe", check=False)
    # Nothing of the app is running any more when msiexec removes its file.
    prefix.run("wineboot", "--shutdown", check=False)
    prefix.run("msiexec", "/x", msi, "/qn")
    assert not exe.parent.exists()
    assert prefix.reg(key) is None


def window_size(app):
    out = app.xdotool("getwindowgeometry", "--shell", app.id)
    geometry = dict(line.split("=", 1) for line in out.split())
    return int(geometry["WIDTH"]), int(geometry["HEIGHT"])


def text_pixels(png):
    """How many pixels below the title bar are nearly black: the text (the
    window is white, its buttons blue and grey, its title bar dark blue)."""
    out = run("convert", png, "-gravity", "South", "-crop", "100%x90%+0+0", "+repage", "-colorspace", "Gray",
              "-threshold", "35%", "-negate", "-format", "%[fx:round(mean*w*h)]", "info:")
    return int(out)


def blurred_difference(a, b, workdir):
    """Pixels that differ by more than 10 % between two photographs blurred
    by 2 pixels: the same text drawn by two fonts' rasterisers gives 0, a
    screen without its text thousands."""
    blurred = []
    for i, png in enumerate([a, b]):
        blurred.append(workdir / f"blurred-{i}.png")
        run("convert", png, "-blur", "0x2", blurred[-1])
    out = subprocess.run(["compare", "-metric", "AE", "-fuzz", "10%", *blurred, "null:"], capture_output=True,
                         text=True, timeout=PATIENCE)
    assert out.returncode in (0, 1), out
    return int(float(out.stderr.split()[0]))


def test_japanese_is_drawn_without_a_japanese_font_and_the_window_scales_at_125_percent(setup_exe, helpers,
                                                                                         display, tmp_path):
    """A Windows without any Japanese font (a prefix with no font at all)
    shows the setup's first screen as one with Noto Sans CJK in the system
    does: the app draws with the font it carries. At 125 % (LogPixels 120,
    as Windows' display settings write it; 200 % would not fit the tests'
    1024×768 screen) the window and its text are larger by that much."""
    runs = {}
    for name, font, dpi in [("font", True, None), ("no-font", False, None), ("125-percent", True, 120)]:
        p = Prefix(helpers, display, font=font)
        try:
            if dpi:
                p.run("reg", "add", r"HKCU\Control Panel\Desktop", "/v", "LogPixels", "/t", "REG_DWORD", "/d",
                      str(dpi), "/f")
            app = p.window([setup_exe], shots=f"win-{name}")
            try:
                app.wait_for("画面 セットアップ")
                runs[name] = (app.photo("01-setup"), window_size(app))
            finally:
                app.stop()
        finally:
            p.close()

    (with_font, size), (without, size_without), (larger, size_larger) = runs.values()
    assert size == (720, 560) and size_without == size, runs
    text = text_pixels(with_font)
    # The control: with the system's font the screen has its text.
    assert text > 2000, (with_font, text)
    assert text_pixels(without) > 0.85 * text, (without, text_pixels(without), text)
    assert blurred_difference(with_font, without, tmp_path) < 500, (with_font, without)

    assert abs(size_larger[0] - 900) <= 2 and abs(size_larger[1] - 700) <= 2, runs
    assert text_pixels(larger) > 1.4 * text, (larger, text_pixels(larger), text)
