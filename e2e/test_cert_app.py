"""The 証明書発行アプリ as a user gets it: downloaded from 証明書取得認証,
unpacked, run with its shipped configuration; the certificate goes into the
NSS database that Chromium reads, and Chromium logs in with it. tarodt (更新可)
renews with the app; the old certificate is in the CRL as superseded."""

import io
import json
import os
import pty
import re
import select
import shutil
import subprocess
import tarfile
import tempfile
import termios
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from conftest import EVENTUALLY, LOGIN_PW, crl_text_listing, crl_url_of, launch, start_server
from test_issuance import run

P12_PW = "Pkcs12#Secret"
DEMO_P12_PW = "Shomei#P12demo"
POLICY_DIR = Path("/etc/chromium/policies/managed")


def app(cwd, *args, home, login_pw=LOGIN_PW, p12_pw=P12_PW):
    env = {**os.environ, "HOME": str(home), "SHOMEI_LOGIN_PASSWORD": login_pw, "SHOMEI_P12_PASSWORD": p12_pw}
    return subprocess.run([str(cwd / "shomei-cert"), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)


def download_app(server, browser, shot, into):
    page = browser.new_context(locale="ja-JP", accept_downloads=True).new_page()
    page.goto(server.url + "/cert-issue")
    shot(page, "cert-issue-download")
    with page.expect_download() as d:
        page.get_by_role("link", name="証明書発行アプリのダウンロード").click()
    data = Path(d.value.path()).read_bytes()
    page.context.close()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    return into / "shomei-cert"


def test_the_downloaded_app_issues_into_nss_and_chromium_logs_in(server, pw, browser, shot, tmp_path):
    appdir = download_app(server, browser, shot, tmp_path)
    config = (appdir / "shomei-cert.toml").read_text()
    assert f'server = "{server.url}"' in config and f'cert_server = "{server.cert_url}"' in config, config
    home = tmp_path / "home"
    home.mkdir()

    done = app(appdir, "issue", "--login-id", "jirodt", "--import-nss", home=home)
    assert done.returncode == 0, done.stderr
    for s in ["[1/4] 個人認証", "[2/4] 証明書取得", "[3/4] 処理中", "[4/4] 取得完了", "CN=jirodt"]:
        assert s in done.stdout, done.stdout
    assert (appdir / "jirodt.p12").exists() and (appdir / "jirodt.p12.chain.pem").exists()
    nss = run("certutil", "-L", "-d", f"sql:{home}/.pki/nssdb", cwd=tmp_path).stdout
    assert "Shomei jirodt" in nss, nss

    # Errors: one line, a distinct exit code, nothing written.
    again = app(appdir, "issue", "--login-id", "jirodt", home=home)
    assert again.returncode == 5 and "は既にあります" in again.stderr, again
    # Never over an existing file without --force, even for a user who may
    # be issued one (sachikodt, 失効済): the file stays byte for byte.
    p12 = (appdir / "jirodt.p12").read_bytes()
    over = app(appdir, "issue", "--login-id", "sachikodt", "--out", "jirodt.p12", home=home)
    assert over.returncode == 5 and "は既にあります" in over.stderr, over
    assert (appdir / "jirodt.p12").read_bytes() == p12
    (appdir / "mine.p12").write_bytes(b"not a certificate")
    forced = app(appdir, "issue", "--login-id", "sachikodt", "--out", "mine.p12", "--force", home=home)
    assert forced.returncode == 0, forced
    assert "CN=sachikodt" in app(appdir, "show", "--p12", "mine.p12", home=home).stdout
    # The key under AES-256-CBC with PBKDF2-HMAC-SHA256, 600,000 iterations
    # (the README's figure); the MAC is SHA-256.
    info = run("openssl", "pkcs12", "-in", "jirodt.p12", "-info", "-noout", "-passin", f"pass:{P12_PW}",
               cwd=appdir)
    dump = info.stdout + info.stderr
    assert "MAC: sha256" in dump, dump
    assert "Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC, Iteration 600000, PRF hmacWithSHA256" in dump, dump
    issued = app(appdir, "issue", "--login-id", "hanakodt", "--out", "h.p12", home=home)
    assert issued.returncode == 3 and "発行済です" in issued.stderr and "証明書失効を依頼" in issued.stderr, issued
    assert len(issued.stderr.strip().splitlines()) == 1
    wrong = app(appdir, "issue", "--login-id", "ichirodt", "--out", "i.p12", home=home, login_pw="wrong")
    assert wrong.returncode == 3 and "ログインIDまたはログインパスワードが正しくない" in wrong.stderr, wrong
    away = app(appdir, "issue", "--login-id", "ichirodt", "--out", "i.p12", "--server", "https://localhost:1", home=home)
    assert away.returncode == 4 and "銀行のサーバーに接続できません" in away.stderr, away
    assert not (appdir / "h.p12").exists() and not (appdir / "i.p12").exists()
    shown = app(appdir, "show", "--p12", "jirodt.p12", home=home)
    assert shown.returncode == 0 and "発行済" in shown.stdout, shown

    chromium_logs_in_by_certificate(pw, server, home, "jirodt", shot, "nss")


def chromium_logs_in_by_certificate(pw, server, home, login_id, shot, name):
    """Chromium with the NSS database of `home` logs in by the certificate
    method. The certificate is picked by policy, as a bank's PC would be set
    up. Without the policy this would test something else (a certificate
    Playwright hands over), so there is no fallback: it fails loudly."""
    policy = POLICY_DIR / f"shomei-e2e-{name}.json"
    try:
        POLICY_DIR.mkdir(parents=True, exist_ok=True)
        rule = json.dumps({"pattern": server.cert_url, "filter": {}})
        policy.write_text(json.dumps({"AutoSelectCertificateForUrls": [rule]}))
    except OSError as e:
        pytest.fail(f"cannot write the Chromium policy {policy} ({e}): this test needs root, as CI runs it")
    try:
        b = launch(pw, home)
        page = b.new_context(locale="ja-JP").new_page()
        page.goto(server.url + "/login")
        page.locator("section.cert").get_by_role("link", name="ログイン").click()
        expect(page.locator("#cert-login-id")).to_have_text(login_id)
        shot(page, f"cert-login-from-{name}")
        page.get_by_label("ログインパスワード").fill(LOGIN_PW)
        page.get_by_role("button", name="ログイン").click()
        expect(page).to_have_url(re.compile(r"/top$"))
        shot(page, f"top-by-{name}-certificate")
        b.close()
    finally:
        policy.unlink(missing_ok=True)


def test_the_legacy_form_for_old_windows(server, tmp_path):
    """--legacy-p12: the key under PBE-SHA1-3DES and a SHA-1 MAC, as Windows
    before 10 1709 and Server 2016 import; OpenSSL reads it, key and
    certificate match, and the app reads it back."""
    appdir = Path(tempfile.mkdtemp(prefix="shomei-app-"))
    try:
        shutil.copy(server.binary_dir / "shomei-cert", appdir / "shomei-cert")
        flags = ["--server", server.url, "--cert-server", server.cert_url, "--root-ca", str(server.root_ca)]
        done = app(appdir, "issue", "--login-id", "ichirodt", "--legacy-p12", "--out", "ichiro.p12", *flags,
                   home=tmp_path)
        assert done.returncode == 0, done.stderr
        info = run("openssl", "pkcs12", "-in", "ichiro.p12", "-info", "-noout", "-passin", f"pass:{P12_PW}",
                   cwd=appdir)
        assert "pbeWithSHA1And3-KeyTripleDES-CBC" in info.stdout + info.stderr
        assert "MAC: sha1" in info.stdout + info.stderr
        run("openssl", "pkcs12", "-in", "ichiro.p12", "-nodes", "-passin", f"pass:{P12_PW}", "-out", "i.pem",
            cwd=appdir)
        from_key = run("openssl", "pkey", "-in", "i.pem", "-pubout", cwd=appdir).stdout
        from_cert = run("openssl", "x509", "-in", "i.pem", "-noout", "-pubkey", cwd=appdir).stdout
        assert from_key == from_cert
        shown = app(appdir, "show", "--p12", "ichiro.p12", *flags, home=tmp_path)
        assert shown.returncode == 0 and "CN=ichirodt" in shown.stdout and "発行済" in shown.stdout, shown
    finally:
        shutil.rmtree(appdir, ignore_errors=True)


def test_tarodt_renews_with_the_app_and_the_old_certificate_is_superseded(server, tmp_path):
    appdir = Path(tempfile.mkdtemp(prefix="shomei-app-"))
    try:
        shutil.copy(server.binary_dir / "shomei-cert", appdir / "shomei-cert")
        p12 = appdir / "tarodt.p12"
        shutil.copy(server.data_dir / "demo-certs" / "tarodt.p12", p12)
        flags = ["--server", server.url, "--cert-server", server.cert_url, "--root-ca", str(server.root_ca)]
        before = app(appdir, "show", "--p12", "tarodt.p12", *flags, home=tmp_path, p12_pw=DEMO_P12_PW)
        assert before.returncode == 0 and "更新可" in before.stdout, before
        old_serial = re.search(r"serial:\s+([0-9a-f]+)", before.stdout).group(1)

        renewed = app(appdir, "renew", "--p12", "tarodt.p12", *flags, home=tmp_path, p12_pw=DEMO_P12_PW)
        assert renewed.returncode == 0, renewed.stderr
        after = app(appdir, "show", "--p12", "tarodt.p12", *flags, home=tmp_path, p12_pw=DEMO_P12_PW)
        new_serial = re.search(r"serial:\s+([0-9a-f]+)", after.stdout).group(1)
        assert new_serial != old_serial and "発行済" in after.stdout, after.stdout

        # The CRL the old certificate names (its partition's) lists it.
        old_pem = tmp_path / "tarodt-old.pem"
        run("openssl", "pkcs12", "-in", str(server.data_dir / "demo-certs" / "tarodt.p12"), "-nokeys",
            "-clcerts", "-passin", f"pass:{DEMO_P12_PW}", "-out", str(old_pem), cwd=tmp_path)
        crl = crl_text_listing(server, old_serial, tmp_path, crl_url_of(old_pem))
        block = crl.split(f"Serial Number: {old_serial.upper()}")
        assert len(block) == 2, crl
        assert "Superseded" in block[1].split("Serial Number:")[0]
        # The old certificate cannot renew again.
        shutil.copy(server.data_dir / "demo-certs" / "tarodt.p12", appdir / "old.p12")
        stale = app(appdir, "renew", "--p12", "old.p12", *flags, home=tmp_path, p12_pw=DEMO_P12_PW)
        # Refused by the certificate listener's TLS alert (revoked: the
        # renewal superseded it), not by a server that is away.
        assert stale.returncode == 4 and "CertificateRevoked" in stale.stderr, stale
        assert "銀行のサーバーに接続できません" in stale.stderr, stale.stderr
    finally:
        shutil.rmtree(appdir, ignore_errors=True)


class Terminal:
    """A program on a terminal of its own (a pty, its controlling terminal),
    typed at as a person types: after its prompt shows."""

    def __init__(self, argv, cwd, env):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            try:
                os.chdir(cwd)
                os.execve(argv[0], argv, env)
            finally:
                os._exit(127)
        self.seen = b""

    def text(self):
        return self.seen.decode("utf-8", "replace")

    def read_some(self, deadline):
        ready, _, _ = select.select([self.fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            return False
        try:
            chunk = os.read(self.fd, 4096)
        except OSError:  # EIO: the program ended and closed its terminal
            chunk = b""
        self.seen += chunk
        return bool(chunk)

    def wait_for(self, prompt):
        deadline = time.monotonic() + EVENTUALLY
        while prompt not in self.text():
            assert self.read_some(deadline), f"no {prompt!r} on the terminal:\n{self.text()}"

    def echoes(self):
        return bool(termios.tcgetattr(self.fd)[3] & termios.ECHO)

    def wait_until_echo_is(self, on):
        deadline = time.monotonic() + EVENTUALLY
        while self.echoes() != on:
            assert time.monotonic() < deadline, f"echo never turned {'on' if on else 'off'}:\n{self.text()}"
            time.sleep(0.01)

    def type(self, line):
        os.write(self.fd, line.encode() + b"\n")

    def finish(self):
        deadline = time.monotonic() + 120
        while self.read_some(deadline):
            pass
        _, status = os.waitpid(self.pid, 0)
        return os.waitstatus_to_exitcode(status)


def test_the_app_asks_for_passwords_without_echo(tmp_path):
    """The README: shomei-cert "asks for the login password without echo"
    (and the PKCS#12 password). On a terminal, the login ID typed is echoed
    (the control: this terminal echoes); while each password prompt waits,
    echo is off, and the passwords typed are not on the screen; echo is on
    again at the end; and they were read as typed: the certificate is issued
    and its file opens with the PKCS#12 password typed."""
    srv = start_server(tmp_path / "srv")
    try:
        appdir = tmp_path / "app"
        appdir.mkdir()
        shutil.copy(srv.binary_dir / "shomei-cert", appdir / "shomei-cert")
        env = {k: v for k, v in os.environ.items() if not k.startswith("SHOMEI_")}
        env["HOME"] = str(tmp_path)
        term = Terminal([str(appdir / "shomei-cert"), "issue", "--server", srv.url, "--cert-server", srv.cert_url,
                         "--root-ca", str(srv.root_ca)], appdir, env)
        term.wait_for("ログインID: ")
        assert term.echoes()
        term.type("jirodt")
        for prompt, secret in [("ログインパスワード: ", LOGIN_PW), ("PKCS#12 ファイルのパスワード: ", P12_PW),
                               ("もう一度入力してください: ", P12_PW)]:
            term.wait_for(prompt)
            term.wait_until_echo_is(False)
            term.type(secret)
        code = term.finish()
        screen = term.text()
        assert code == 0, screen
        assert "ログインID: jirodt" in screen, screen
        assert LOGIN_PW not in screen and P12_PW not in screen, screen
        assert "[4/4] 取得完了" in screen, screen
        assert term.echoes(), "echo is on again"
        opened = run("openssl", "pkcs12", "-in", "jirodt.p12", "-nokeys", "-passin", f"pass:{P12_PW}", cwd=appdir)
        assert "CN=jirodt" in opened.stdout.replace(" = ", "="), opened.stdout
    finally:
        srv.proc.terminate()
        try:
            srv.proc.wait(10)
        except subprocess.TimeoutExpired:
            srv.proc.kill()
