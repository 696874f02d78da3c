"""The second half of the guide: 証明書取得認証, enrollment over EST, the
電子証明書方式 login in Chromium with the certificate, revocation by an
administrator, and the next handshake refused — on the real binary."""

import base64
import re
import subprocess

from playwright.sync_api import expect

from conftest import CONFIRM_PW, LOGIN_PW


def run(*args, cwd, check=True):
    out = subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, timeout=120)
    if check:
        assert out.returncode == 0, f"{args}: {out.stdout}{out.stderr}"
    return out


def enroll_with_openssl_and_curl(server, tmp, login_id, name):
    """What any EST client does: a key and CSR made locally, posted with
    HTTP Basic; the answer is base64 PKCS#7."""
    run("openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", f"{name}.key", "-subj", f"/CN={login_id}", "-outform", "DER", "-out", f"{name}.csr", cwd=tmp)
    (tmp / f"{name}.csr.b64").write_bytes(base64.b64encode((tmp / f"{name}.csr").read_bytes()))
    got = server.curl("-u", f"{login_id}:{LOGIN_PW}", "-H", "Content-Type: application/pkcs10",
                      "-H", "Content-Transfer-Encoding: base64", "--data-binary", f"@{tmp / (name + '.csr.b64')}",
                      "-o", str(tmp / f"{name}.p7.b64"), "-w", "%{http_code}",
                      server.url + "/.well-known/est/simpleenroll")
    status = got.stdout.decode()
    if status != "200":
        return status, (tmp / f"{name}.p7.b64").read_text()
    (tmp / f"{name}.p7").write_bytes(base64.b64decode((tmp / f"{name}.p7.b64").read_text()))
    run("openssl", "pkcs7", "-inform", "DER", "-in", f"{name}.p7", "-print_certs", "-out", f"{name}.crt", cwd=tmp)
    return status, (tmp / f"{name}.crt").read_text()


def revoke(browser, server, actor, target, shot=None):
    """`actor` revokes `target`'s certificate: login, BRSK018 → BRSK019 → 実行."""
    ctx = browser.new_context(locale="ja-JP")
    page = ctx.new_page()
    page.goto(server.url + "/login")
    page.get_by_label("ログインID").fill(actor)
    page.get_by_label("ログインパスワード").fill(LOGIN_PW)
    page.locator("section.idpw").get_by_role("button", name="ログイン").click()
    page.goto(server.url + "/brsk018")
    page.get_by_label(target, exact=True).check()
    page.get_by_role("button", name="失効 >").click()
    page.get_by_label("確認パスワード").fill(CONFIRM_PW)
    page.get_by_role("button", name="実行 >").click()
    expect(page.locator("h1")).to_have_text("利用者管理 証明書失効結果")
    if shot:
        shot(page, f"BRSK020-{target}")
    ctx.close()


def test_the_certificate_issue_page_has_the_guides_steps(server, browser, shot):
    page = browser.new_context(locale="ja-JP").new_page()
    page.goto(server.url + "/login")
    page.get_by_role("link", name="電子証明書発行").click()
    expect(page.locator("h1")).to_have_text("証明書取得認証")
    expect(page.locator("ol.stepper li")).to_have_text(["個人認証", "証明書取得", "処理中", "取得完了"])
    shot(page, "cert-issue")
    page.get_by_role("link", name="中断").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    page.context.close()


def test_certificate_login_revocation_and_reissue(server, browser, shot, tmp_path):
    status, cert = enroll_with_openssl_and_curl(server, tmp_path, "jirodt", "jirodt1")
    assert status == "200", cert

    # Chromium presents the certificate to the certificate listener.
    ctx = browser.new_context(
        locale="ja-JP",
        client_certificates=[{
            "origin": server.cert_url,
            "certPath": str(tmp_path / "jirodt1.crt"),
            "keyPath": str(tmp_path / "jirodt1.key"),
        }],
    )
    page = ctx.new_page()
    page.goto(server.url + "/login")
    page.locator("section.cert").get_by_role("link", name="ログイン").click()
    expect(page.locator("h1")).to_have_text("電子証明書方式ログイン")
    expect(page.locator("#cert-login-id")).to_have_text("jirodt")
    shot(page, "cert-login")
    page.get_by_label("ログインパスワード").fill(LOGIN_PW)
    page.get_by_role("button", name="ログイン").click()
    expect(page).to_have_url(re.compile(r"/top$"))
    expect(page.get_by_text("データ二郎 様").first).to_be_visible()
    shot(page, "top-by-certificate")

    # jirodt (マスター) revokes his own certificate in the portal from another
    # browser, as the guide tells a マスター replacing a PC; the session ends at once.
    revoke(browser, server, "jirodt", "jirodt", shot)
    page.goto(server.cert_url + "/top")
    expect(page).to_have_url(re.compile(re.escape(server.url) + r"/login\?e=revoked$"))
    expect(page.get_by_role("alert")).to_contain_text("失効しています")
    shot(page, "cert-session-after-revocation")
    ctx.close()

    # The next handshake with it is refused (curl and a new browser).
    got = server.curl("--cert", str(tmp_path / "jirodt1.crt"), "--key", str(tmp_path / "jirodt1.key"),
                      "-o", "/dev/null", "-w", "%{http_code}", server.cert_url + "/cert-login")
    assert got.returncode != 0 and got.stdout.decode() in ("000", ""), got
    assert b"alert certificate revoked" in got.stderr, got.stderr
    ctx = browser.new_context(client_certificates=[{
        "origin": server.cert_url,
        "certPath": str(tmp_path / "jirodt1.crt"),
        "keyPath": str(tmp_path / "jirodt1.key"),
    }])
    fresh = ctx.new_page()
    fresh.goto(server.cert_url + "/cert-login")
    # Playwright's certificate proxy shows the refused handshake as a page
    # that names the server's alert: certificate revoked (44), not any
    # failure to connect.
    refusal = fresh.locator("body")
    expect(refusal).to_contain_text("Playwright client-certificate error")
    expect(refusal).to_contain_text("alert certificate revoked")
    expect(fresh.locator("h1")).to_have_count(0)
    assert "電子証明書方式ログイン" not in fresh.content()
    shot(fresh, "revoked-certificate-refused")
    ctx.close()

    # 失効済 → issue again succeeds, and the new certificate logs in with curl.
    status, cert = enroll_with_openssl_and_curl(server, tmp_path, "jirodt", "jirodt2")
    assert status == "200", cert
    got = server.curl("--cert", str(tmp_path / "jirodt2.crt"), "--key", str(tmp_path / "jirodt2.key"),
                      server.cert_url + "/cert-login")
    assert got.returncode == 0 and "jirodt" in got.stdout.decode()

    # hanakodt's own certificate is 発行済: issuing again is refused.
    status, message = enroll_with_openssl_and_curl(server, tmp_path, "hanakodt", "hanako")
    assert status == "403", message
    assert "revoke it first" in message
