"""The 証明書発行アプリ as a Debian/Ubuntu package: 証明書取得認証 offers
「Debian/Ubuntu 用パッケージ (.deb) のダウンロード」 to Linux browsers only and
only when the server has an app to package; the .deb from the running demo
server is a valid package with the menu entry 「証明書発行アプリ」, the
shomei-cert: handler and this bank's configuration; unpacked into a temporary
root (no root rights, nothing installed) its binary issues a certificate.
Its Depends cover what the binary links and what its window loads."""

import os
import re
import shutil
import subprocess
import tomllib

import pytest
from playwright.sync_api import expect

from conftest import BINARY, LOGIN_PW, ROOT, start_server
from test_desktop_app import Window, display  # noqa: F401 (a fixture)

LINUX_CHROME = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                "Chrome/131.0.0.0 Safari/537.36")
UBUNTU_FIREFOX = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
WINDOWS_EDGE = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0")
MAC_SAFARI = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
              "Version/18.1 Safari/605.1.15")
ANDROID_CHROME = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/131.0.0.0 Mobile Safari/537.36")

DEB_LINK = "Debian/Ubuntu 用パッケージ (.deb) のダウンロード"
TAR_LINK = "証明書発行アプリのダウンロード"
VERSION = tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]["package"]["version"]


def run(*args, **kw):
    out = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=120, **kw)
    assert out.returncode == 0, out
    return out.stdout


def cert_issue_page(browser, server, user_agent):
    page = browser.new_context(locale="ja-JP", user_agent=user_agent, accept_downloads=True).new_page()
    page.goto(server.url + "/cert-issue")
    return page


@pytest.mark.parametrize("user_agent,offered", [
    (LINUX_CHROME, True),
    (UBUNTU_FIREFOX, True),
    (WINDOWS_EDGE, False),
    (MAC_SAFARI, False),
    (ANDROID_CHROME, False),
])
def test_the_deb_is_offered_to_linux_browsers_and_the_archive_to_everyone(server, browser, user_agent, offered):
    page = cert_issue_page(browser, server, user_agent)
    deb = page.get_by_role("link", name=DEB_LINK)
    if user_agent == WINDOWS_EDGE:
        # A Windows browser is never handed the Linux app: without the bank's
        # Windows setup beside the server it is told whom to call.
        expect(page.locator("#no-windows-app")).to_contain_text("Windows 用の証明書発行アプリは、現在ご用意できておりません")
        assert "/cert-issue/app\"" not in page.content()
        expect(deb).to_have_count(0)
        page.context.close()
        return
    expect(page.get_by_role("link", name=TAR_LINK)).to_have_attribute("href", "/cert-issue/app")
    if offered:
        expect(deb).to_have_attribute("href", "/cert-issue/app.deb")
        assert "パソコンのすべての利用者向けにインストール" in page.locator("body").inner_text()
    else:
        expect(deb).to_have_count(0)
        assert ".deb" not in page.content()
    page.context.close()


def download_deb(server, browser, shot, into):
    page = cert_issue_page(browser, server, LINUX_CHROME)
    shot(page, "cert-issue-deb")
    with page.expect_download() as d:
        page.get_by_role("link", name=DEB_LINK).click()
    deb = into / d.value.suggested_filename
    d.value.save_as(deb)
    page.context.close()
    return deb


def package_of(path):
    """The installed package a file belongs to (dpkg knows /lib and /usr/lib
    apart on merged-/usr systems)."""
    for p in dict.fromkeys([path, os.path.realpath(path), re.sub(r"^/usr/", "/", os.path.realpath(path))]):
        out = subprocess.run(["dpkg", "-S", p], capture_output=True, text=True)
        if out.returncode == 0:
            return out.stdout.split(":")[0].split(",")[0].strip()
    raise AssertionError(f"no package holds {path}")


def names(field):
    """Package names of a Depends field, every alternative counted."""
    return {re.sub(r"[ (:].*", "", alt.strip()) for dep in field.split(",") if dep.strip() for alt in dep.split("|")}


def closure(packages):
    """The packages and everything they depend on, as installed here."""
    seen, todo = set(), list(packages)
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        out = subprocess.run(["dpkg-query", "-W", "-f=${Depends},${Pre-Depends}", p], capture_output=True, text=True)
        if out.returncode == 0:
            todo.extend(names(out.stdout) - seen)
    return seen


def deb_arch(binary):
    """Debian's name for the architecture of an ELF binary (its e_machine),
    as the server reads it: the .deb is for the binary it packages, not for
    a machine the test assumes."""
    head = binary.read_bytes()[:20]
    assert head[:4] == b"\x7fELF", f"{binary} is no ELF binary"
    machine = int.from_bytes(head[18:20], "little")
    return {0x3E: "amd64", 0xB7: "arm64"}[machine]


def test_the_deb_holds_the_app_its_menu_entry_handler_and_this_banks_configuration(
        server, browser, shot, tmp_path, display):  # noqa: F811
    deb = download_deb(server, browser, shot, tmp_path)
    arch = deb_arch(BINARY.parent / "shomei-cert")
    assert deb.name == f"shomei-cert_{VERSION}_{arch}.deb"

    field = lambda name: run("dpkg-deb", "--field", deb, name).strip()  # noqa: E731
    assert field("Package") == "shomei-cert"
    assert field("Version") == VERSION
    assert field("Architecture") == arch
    assert field("Maintainer") == "ほくぎんデモ銀行 <business_ib@example.jp>"  # the bank and its help desk
    depends = names(field("Depends"))
    assert "libnss3-tools" in depends, depends  # certutil and pk12util
    assert run("dpkg-deb", "--info", deb, "conffiles").split() == [
        "/etc/shomei-cert/shomei-cert.toml", "/etc/shomei-cert/root-ca.crt"]
    contents = run("dpkg-deb", "--contents", deb)
    for f in ["./usr/bin/shomei-cert", "./usr/share/applications/shomei-cert.desktop",
              "./etc/shomei-cert/shomei-cert.toml", "./etc/shomei-cert/root-ca.crt"]:
        assert re.search(rf"^[-rwx]{{10}} root/root .* {re.escape(f)}$", contents, re.M), contents

    root = tmp_path / "root"
    run("dpkg-deb", "-x", deb, root)
    app = root / "usr/bin/shomei-cert"
    assert os.access(app, os.X_OK)
    assert app.read_bytes() == (BINARY.parent / "shomei-cert").read_bytes()

    # The menu entry and the link handler, as the system will see them.
    apps = root / "usr/share/applications"
    entry = (apps / "shomei-cert.desktop").read_text()
    for line in ["Name=証明書発行アプリ", 'Exec="/usr/bin/shomei-cert" open %u',
                 "MimeType=x-scheme-handler/shomei-cert;"]:
        assert line in entry.splitlines(), entry
    assert run("desktop-file-validate", apps / "shomei-cert.desktop").strip() == ""
    run("update-desktop-database", apps)  # what postinst does, here in the temporary root
    assert "x-scheme-handler/shomei-cert=shomei-cert.desktop;" in (apps / "mimeinfo.cache").read_text()

    # The per-user setup writes the same entry, only for its own path.
    home = tmp_path / "home"
    home.mkdir()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("XDG_")}, "HOME": str(home)}
    run(app, "install", "--dir", home / "app", env=env)
    per_user = (home / ".local/share/applications/shomei-cert.desktop").read_text()
    assert per_user.replace(f'"{home}/app/shomei-cert"', '"/usr/bin/shomei-cert"') == entry

    # This bank's configuration; the binary issues with it.
    etc = root / "etc/shomei-cert"
    config = (etc / "shomei-cert.toml").read_text()
    assert f'server = "{server.url}"' in config and f'cert_server = "{server.cert_url}"' in config, config
    assert (etc / "root-ca.crt").read_text() == server.root_ca.read_text()
    env.update(SHOMEI_LOGIN_PASSWORD=LOGIN_PW, SHOMEI_P12_PASSWORD="Deb#P12pass")
    p12 = tmp_path / "jirodt.p12"
    issued = run(app, "issue", "--login-id", "jirodt", "--import-nss", "--out", p12, cwd=etc, env=env)
    assert "[4/4] 取得完了" in issued and "CN=jirodt" in issued, issued
    assert "Shomei jirodt" in run("certutil", "-L", "-d", f"sql:{home}/.pki/nssdb")
    shown = run(app, "show", "--config", etc / "shomei-cert.toml", "--p12", p12, env=env)
    assert re.search(r"^state: +発行済$", shown, re.M), shown

    # Depends: every library the binary links, directly (as dpkg-shlibdeps
    # would put them) ...
    linked = re.findall(r"=> (/\S+)", run("ldd", app))
    assert linked
    for lib in linked:
        assert package_of(lib) in depends, (lib, depends)
    # ... and every library the window loads at run time, through them.
    w = Window(app, home, display, cwd=etc)
    try:
        w.wait_for("画面 ")
        maps = (open(f"/proc/{w.proc.pid}/maps").read())
    finally:
        w.stop()
    loaded = sorted(set(re.findall(r"(/\S+\.so[.\d]*)$", maps, re.M)))
    assert any("libxkbcommon-x11" in lib for lib in loaded), loaded
    reach = closure(depends)
    missing = {lib: package_of(lib) for lib in loaded if package_of(lib) not in reach}
    assert not missing, missing


def test_without_an_app_to_package_the_deb_is_not_offered(tmp_path):
    """A server whose shomei-cert is no amd64/arm64 binary offers no .deb,
    but still the archive; with no app at all, neither. (Its own demo CA:
    fetched with curl trusting that CA.)"""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shutil.copy2(BINARY, bin_dir / "shomei")
    fake = bin_dir / "shomei-cert"
    fake.write_text("#!/bin/sh\necho not the app\n")
    fake.chmod(0o755)
    s = start_server(tmp_path, binary=bin_dir / "shomei")

    def get(path, user_agent=LINUX_CHROME):
        out = run("curl", "-s", "--cacert", s.root_ca, "-A", user_agent, "-w", "\n%{http_code}", s.url + path)
        body, _, status = out.rpartition("\n")
        return int(status), body

    try:
        status, page = get("/cert-issue")
        assert status == 200 and f">{TAR_LINK}</a>" in page and "app.deb" not in page, page
        status, body = get("/cert-issue/app.deb")
        assert status == 503 and "証明書発行アプリは現在ダウンロードできません" in body, body
        fake.unlink()
        status, page = get("/cert-issue")
        assert status == 200 and "証明書発行アプリは現在ダウンロードできません" in page, page
        assert f">{TAR_LINK}</a>" not in page and "app.deb" not in page, page
    finally:
        s.proc.terminate()
        s.proc.wait(10)


def test_the_deb_is_built_again_when_the_app_beside_the_server_changes(tmp_path):
    """The README: "the package is rebuilt when the binary changes". The
    .deb packages the shomei-cert beside the server; once that file is
    replaced by another build (here the same program with a byte appended,
    which changes its size and time as a new build does), the next download,
    from the same running server, packages the new one and not the old."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shutil.copy2(BINARY, bin_dir / "shomei")
    app = bin_dir / "shomei-cert"
    shutil.copy2(BINARY.parent / "shomei-cert", app)
    s = start_server(tmp_path, binary=bin_dir / "shomei")

    def packaged(name):
        deb = tmp_path / f"{name}.deb"
        out = run("curl", "-s", "--cacert", s.root_ca, "-A", LINUX_CHROME, "-o", deb, "-w", "%{http_code}",
                  s.url + "/cert-issue/app.deb")
        assert out == "200", out
        root = tmp_path / name
        run("dpkg-deb", "-x", deb, root)
        return (root / "usr/bin/shomei-cert").read_bytes()

    try:
        first = app.read_bytes()
        assert packaged("first") == first
        changed = bin_dir / "shomei-cert.new"
        changed.write_bytes(first + b"\0")
        changed.chmod(0o755)
        os.replace(changed, app)
        assert packaged("second") == first + b"\0"
    finally:
        s.proc.terminate()
        s.proc.wait(10)
