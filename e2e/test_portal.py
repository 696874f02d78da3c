"""The guide's revocation flow (電子証明書失効・再発行編) as a customer does it:
headless Chromium clicks the visible labels of BSSK001 → BRSK001 → BRSK018 →
BRSK019 → BRSK020 on the real binary, then curl and openssl check that the
revocation is really published. Screenshots of every screen go to
target/screenshots/."""

import re
import subprocess
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from conftest import CONFIRM_PW, EVENTUALLY, LOGIN_PW, crl_text_listing

LOGIN_FAILED = "ログインできませんでした。ログインIDとログインパスワードをご確認ください。"


def new_page(browser):
    ctx = browser.new_context(locale="ja-JP", viewport={"width": 1200, "height": 900})
    return ctx.new_page()


def login(page, server, login_id, password=LOGIN_PW):
    page.goto(server.url + "/login")
    page.get_by_label("ログインID").fill(login_id)
    page.get_by_label("ログインパスワード").fill(password)
    page.locator("section.idpw").get_by_role("button", name="ログイン").click()


def screen(page, title, screen_id):
    expect(page.locator("h1")).to_have_text(title)
    if screen_id:
        expect(page.locator(".screen-id")).to_have_text(screen_id)


def row(page, login_id):
    return page.locator("#user-list tbody tr", has=page.get_by_label(login_id, exact=True))


def openssl(*args, cwd):
    return subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60)


@pytest.fixture
def hanako(browser, server):
    """A fresh browser context, logged in as hanakodt (管理者)."""
    page = new_page(browser)
    login(page, server, "hanakodt")
    expect(page).to_have_url(re.compile(r"/top$"))
    yield page
    page.context.close()


# Each screen of the guide is its own test, so that one failure does not hide
# the others; they share the module's server and run in this order (the
# renewal notice before tarodt's certificate is revoked).


def test_the_top_page_tells_only_tarodt_that_his_certificate_is_renewable(server, browser, shot):
    page = new_page(browser)
    page.goto(server.url + "/login")
    expect(page.get_by_role("heading", name="電子証明書方式のお客さま")).to_be_visible()
    expect(page.get_by_role("heading", name="ID・パスワード方式のお客さま")).to_be_visible()
    shot(page, "login")
    state = lambda: page.locator("table.kv tr", has_text="証明書状態").locator("td")
    for who, cert_state, told in (("hanakodt", "発行済", False), ("tarodt", "更新可", True)):
        login(page, server, who)
        expect(page).to_have_url(re.compile(r"/top$"))
        expect(state()).to_have_text(cert_state)
        notice = page.get_by_role("status")
        if told:
            expect(notice).to_have_text(re.compile(
                r"^電子証明書の有効期限（.+）が近づいています。証明書発行アプリの「証明書更新」で証明書を更新してください"))
        else:
            expect(notice).to_have_count(0)
        shot(page, f"top-{who}")
        page.get_by_role("button", name="ログアウト").click()
        expect(page.get_by_text("ログアウトしました。")).to_be_visible()
    page.context.close()


def test_the_menus_of_bssk001_and_brsk001(hanako, shot):
    page = hanako
    page.get_by_role("navigation", name="グローバルメニュー").get_by_role("link", name="管理業務").click()
    screen(page, "管理業務 業務選択", "BSSK001")
    for item in ["企業管理", "利用者管理", "操作履歴照会"]:
        expect(page.get_by_role("link", name=item, exact=True)).to_be_visible()
    shot(page, "BSSK001")

    page.get_by_role("link", name="利用者管理", exact=True).click()
    screen(page, "利用者管理 作業内容選択", "BRSK001")
    for item in ["パスワード変更", "利用者情報の照会", "利用者情報の管理", "利用者停止・解除", "証明書失効"]:
        expect(page.get_by_role("link", name=item, exact=True)).to_be_visible()
    shot(page, "BRSK001")


def to_brsk018(page, server):
    page.goto(server.url + "/brsk001")
    page.get_by_role("link", name="証明書失効", exact=True).click()
    screen(page, "利用者管理 利用者一覧", "BRSK018")


def test_brsk018_shows_every_state_and_sorts_by_name(hanako, server, shot):
    page = hanako
    to_brsk018(page, server)
    expected = {
        "hanakodt": "発行済",
        "ichirodt": "有効期限切れ",
        "jirodt": "未発行",
        "sachikodt": "失効済",
        "tarodt": "更新可",
    }
    for login_id, state in expected.items():
        expect(row(page, login_id).locator("td").nth(4)).to_have_text(state)
    expect(row(page, "tarodt").locator("td").nth(5)).to_have_text(re.compile(r"^\d{4}年\d{2}月\d{2}日 \d{2}時\d{2}分\d{2}秒$"))
    shot(page, "BRSK018")

    # 並び順: 利用者名 降順, 再表示.
    page.locator("#sort").select_option(label="利用者名")
    page.locator("#order").select_option(label="降順")
    page.get_by_role("button", name="再表示").click()
    names = page.locator("#user-list tbody tr td:nth-child(3)").all_inner_texts()
    assert names == ["北銀 花子", "データ朗", "データ幸子", "データ太郎", "データ二郎"], names
    shot(page, "BRSK018-sorted-by-name-desc")


def test_hanakodt_revokes_tarodt_through_the_guides_screens(hanako, server, shot, tmp_path):
    page = hanako
    to_brsk018(page, server)
    # 失効 with nobody selected: an error on BRSK018.
    page.get_by_role("button", name="失効 >").click()
    screen(page, "利用者管理 利用者一覧", "BRSK018")
    expect(page.get_by_role("alert")).to_have_text("利用者を選択してください。")
    shot(page, "BRSK018-nothing-selected")

    # A certificate that is already 失効済 cannot be chosen.
    page.get_by_label("sachikodt", exact=True).check()
    page.get_by_role("button", name="失効 >").click()
    expect(page.get_by_role("alert")).to_contain_text("選択された利用者の証明書は失効できません。")
    shot(page, "BRSK018-not-revocable")

    # A 管理者 cannot revoke the マスター's certificate (the マスター revokes their own).
    page.get_by_label("jirodt", exact=True).check()
    page.get_by_role("button", name="失効 >").click()
    screen(page, "利用者管理 利用者一覧", "BRSK018")
    expect(page.get_by_role("alert")).to_have_text("管理者ユーザはマスターユーザに対してこの操作を行うことはできません。")
    shot(page, "BRSK018-master-protected")

    page.get_by_label("tarodt", exact=True).check()
    page.get_by_role("button", name="失効 >").click()
    screen(page, "利用者管理 証明書失効確認", "BRSK019")
    expect(page.locator("table.kv").first).to_contain_text("tarodt")
    expect(page.locator("table.kv").first).to_contain_text("データ太郎")
    shot(page, "BRSK019")

    page.get_by_label("確認パスワード").fill("not-the-password")
    page.get_by_role("button", name="実行 >").click()
    screen(page, "利用者管理 証明書失効確認", "BRSK019")
    expect(page.get_by_role("alert")).to_contain_text("確認パスワードが正しくありません。")
    shot(page, "BRSK019-wrong-confirmation-password")

    page.get_by_label("確認パスワード").fill(CONFIRM_PW)
    page.get_by_role("button", name="実行 >").click()
    screen(page, "利用者管理 証明書失効結果", "BRSK020")
    result = page.locator("#result")
    expect(result).to_contain_text("tarodt")
    expect(result).to_contain_text("失効済")
    shot(page, "BRSK020")

    # Returning to the confirmation screen finds nothing pending: the
    # operation was used up, and the list shows the new state.
    page.goto(server.url + "/brsk019")
    screen(page, "利用者管理 利用者一覧", "BRSK018")
    expect(row(page, "tarodt").locator("td").nth(4)).to_have_text("失効済")
    shot(page, "BRSK018-after-revocation")

    # 操作履歴照会 (BSSK011) from BSSK001 shows the revocation, newest first,
    # and narrows to it by 操作.
    page.goto(server.url + "/bssk001")
    page.get_by_role("link", name="操作履歴照会").click()
    screen(page, "管理業務 操作履歴照会", "BSSK011")
    first = page.locator("#history tbody tr").first
    expect(first).to_contain_text("証明書失効")
    expect(first).to_contain_text("tarodt")
    shot(page, "BSSK011")
    page.get_by_label("操作", exact=True).select_option("証明書失効")
    page.get_by_label("結果").select_option("成功")
    page.get_by_role("button", name="照会").click()
    screen(page, "管理業務 操作履歴照会", "BSSK011")
    expect(page.locator("#history tbody tr")).to_have_count(1)
    shot(page, "BSSK011-filtered")

    # The CRL at the address written in tarodt's certificate lists its serial.
    cert = tmp_path / "tarodt.pem"
    cert.write_text(server.cli("cert", "show", "--login-id", "tarodt"))
    text = openssl("x509", "-in", str(cert), "-noout", "-text", "-serial", cwd=tmp_path).stdout
    serial = re.search(r"^serial=([0-9A-F]+)$", text, re.M).group(1)
    # Plain HTTP, on the PKI listener (RFC 5280 §4.2.1.13).
    crl_url = re.search(r"URI:(http://\S+/pki/crl/\d+)", text).group(1)
    assert crl_url.startswith(server.pki_url), crl_url
    crl = crl_text_listing(server, serial, tmp_path, crl_url)
    assert f"Serial Number: {serial}" in crl, crl
    assert "X509v3 CRL Number" in crl and "X509v3 Authority Key Identifier" in crl
    assert openssl("crl", "-inform", "DER", "-in", "crl.der", "-out", "crl.pem", cwd=tmp_path).returncode == 0
    ca = server.data_dir / "ca"
    chain = tmp_path / "chain.pem"
    chain.write_text((ca / "root-ca.crt").read_text() + (ca / "issuing-ca.crt").read_text())
    plain = openssl("verify", "-CAfile", str(chain), str(cert), cwd=tmp_path)
    assert plain.returncode == 0, plain.stdout + plain.stderr
    checked = openssl("verify", "-crl_check", "-CAfile", str(chain), "-CRLfile", "crl.pem", str(cert), cwd=tmp_path)
    assert checked.returncode != 0
    assert "certificate revoked" in checked.stdout + checked.stderr


def test_brsk005_shows_her_own_information(hanako, server, shot):
    page = hanako
    # 利用者情報の照会 (BRSK005): her own information.
    page.goto(server.url + "/brsk001")
    page.get_by_role("link", name="利用者情報の照会").click()
    screen(page, "利用者管理 利用者情報照会", "BRSK005")
    expect(page.locator("#profile")).to_contain_text("hanakodt")
    expect(page.locator("#profile")).to_contain_text("管理者ユーザ")
    shot(page, "BRSK005")


def test_brsk002_shows_the_rules_and_says_why_it_refuses(hanako, server, shot):
    page = hanako
    # パスワード変更 (BRSK002): the rules are shown; a refusal says why.
    page.goto(server.url + "/brsk001")
    page.get_by_role("link", name="パスワード変更").click()
    screen(page, "利用者管理 パスワード変更", "BRSK002")
    expect(page.locator("#rules")).to_contain_text("8文字以上32文字以内")
    page.get_by_label("現在のパスワード").fill(LOGIN_PW)
    page.get_by_label("新しいパスワード", exact=True).fill("onlyletters")
    page.get_by_label("新しいパスワード（確認用）").fill("onlyletters")
    page.get_by_role("button", name="変更 >").click()
    screen(page, "利用者管理 パスワード変更", "BRSK002")
    expect(page.get_by_role("alert")).to_contain_text("英字と数字")
    shot(page, "BRSK002-refused")


def test_brsk021_stops_sachikodt_and_makes_her_available_again(hanako, server, shot):
    page = hanako
    # 利用者停止・解除 (BRSK021 → BRSK022 → BRSK023): stop sachikodt, then
    # make her available again.
    for state, name in (("利用停止", "stopped"), ("利用可能", "available")):
        page.goto(server.url + "/brsk001")
        page.get_by_role("link", name="利用者停止・解除").click()
        screen(page, "利用者管理 利用者停止・解除", "BRSK021")
        page.get_by_label("sachikodt", exact=True).check()
        page.get_by_label("変更後のサービス状態").select_option(state)
        shot(page, f"BRSK021-{name}")
        page.get_by_role("button", name="次へ >").click()
        screen(page, "利用者管理 利用者停止・解除確認", "BRSK022")
        shot(page, f"BRSK022-{name}")
        page.get_by_label("確認パスワード").fill(CONFIRM_PW)
        page.get_by_role("button", name="実行 >").click()
        screen(page, "利用者管理 利用者停止・解除結果", "BRSK023")
        expect(page.locator("#changed")).to_contain_text(state)
        shot(page, f"BRSK023-{name}")


def test_bssk002_shows_the_company_and_no_edit_to_an_administrator(hanako, server, shot):
    page = hanako
    # 企業管理 (BSSK002): a 管理者 sees the company; only the マスター edits.
    page.goto(server.url + "/bssk001")
    page.get_by_role("link", name="企業管理").click()
    screen(page, "管理業務 企業管理", "BSSK002")
    expect(page.locator("#company")).to_contain_text("株式会社ほくぎん商事")
    expect(page.locator("#edit")).to_have_count(0)
    shot(page, "BSSK002")


def test_brsk011_registers_a_user_and_deletes_them_then_logout(hanako, server, shot):
    page = hanako
    # 利用者情報の管理: register a user, then delete them again.
    page.goto(server.url + "/brsk001")
    page.get_by_role("link", name="利用者情報の管理").click()
    screen(page, "利用者管理 利用者一覧", "BRSK011")
    shot(page, "BRSK011")
    page.get_by_role("link", name="新規登録 >").click()
    screen(page, "利用者管理 利用者登録", "BRSK012")
    page.get_by_label("ログインID").fill("e2euser01")
    page.get_by_label("利用者名").fill("試験 花子")
    page.get_by_label("利用者区分").select_option("一般ユーザ")
    page.get_by_label("メールアドレス").fill("e2e@example.jp")
    page.get_by_label("初期ログインパスワード").fill("Shoki#Pass1")
    page.get_by_label("初期確認用パスワード").fill("Shoki#Kaku2")
    page.get_by_label("確認パスワード", exact=True).fill(CONFIRM_PW)
    shot(page, "BRSK012")
    page.get_by_role("button", name="実行 >").click()
    screen(page, "利用者管理 利用者情報管理結果", "BRSK013")
    shot(page, "BRSK013")
    page.get_by_role("link", name="利用者一覧へ").click()
    page.locator("#delete-e2euser01").click()
    screen(page, "利用者管理 利用者削除確認", "BRSK015")
    shot(page, "BRSK015")
    page.get_by_label("確認パスワード").fill(CONFIRM_PW)
    page.get_by_role("button", name="実行 >").click()
    screen(page, "利用者管理 利用者情報管理結果", "BRSK013")
    expect(page.get_by_role("status")).to_contain_text("e2euser01")

    page.get_by_role("button", name="ログアウト").click()
    expect(page.get_by_text("ログアウトしました。")).to_be_visible()
    shot(page, "logged-out")


def test_a_general_user_is_refused(server, browser, shot, tmp_path):
    page = new_page(browser)
    login(page, server, "ichirodt")
    expect(page).to_have_url(re.compile(r"/top$"))
    page.goto(server.url + "/brsk001")
    screen(page, "利用者管理 作業内容選択", "BRSK001")
    expect(page.get_by_role("link", name="証明書失効", exact=True)).to_have_count(0)
    shot(page, "BRSK001-general-user")
    response = page.goto(server.url + "/brsk018")
    assert response.status == 403
    expect(page.get_by_role("alert")).to_contain_text("この操作を行う権限がありません。")
    shot(page, "BRSK018-general-user-refused")
    page.context.close()

    # A direct POST with curl, with a valid session and CSRF token: refused too.
    jar = str(tmp_path / "jar")
    body = server.curl("-c", jar, "-b", jar, server.url + "/login").stdout.decode()
    csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', body).group(1)
    server.curl("-c", jar, "-b", jar, "-o", "/dev/null", "--data-urlencode", f"csrf={csrf}", "--data-urlencode", "login_id=ichirodt",
                "--data-urlencode", f"password={LOGIN_PW}", server.url + "/login")
    body = server.curl("-c", jar, "-b", jar, server.url + "/top").stdout.decode()
    csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', body).group(1)
    got = server.curl("-c", jar, "-b", jar, "-w", "\n%{http_code}", "--data", f"csrf={csrf}&user=1",
                      server.url + "/brsk018")
    body, status = got.stdout.decode().rsplit("\n", 1)
    # The authority's refusal, not the form check's (a 403 as well).
    assert status == "403" and "この操作を行う権限がありません。" in body, body


def test_login_errors_do_not_reveal_whether_the_id_exists(server, browser, shot):
    page = new_page(browser)
    login(page, server, "nosuchuser", "whatever")
    expect(page.get_by_role("alert")).to_contain_text(LOGIN_FAILED)
    unknown = page.get_by_role("alert").inner_text()
    shot(page, "login-unknown-id")
    login(page, server, "jirodt", "wrong-password")
    expect(page.get_by_role("alert")).to_have_text(unknown)
    shot(page, "login-wrong-password")
    page.context.close()


def test_the_certificate_column_leads_to_the_certificate_listener(server, browser):
    page = new_page(browser)
    page.goto(server.url + "/login")
    failed = []
    page.on("requestfailed", lambda r: failed.append((r.url, r.failure)))
    with page.expect_request(server.cert_url + "/cert-login"):
        page.locator("section.cert").get_by_role("link", name="ログイン").click()
    # Without a certificate in the browser the handshake is refused, so the
    # navigation itself fails: nothing pretends to log in.
    deadline = time.monotonic() + EVENTUALLY
    while not failed and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    assert failed and failed[0][0] == server.cert_url + "/cert-login", failed
    # Chromium's names for a handshake the server ended for want of a
    # certificate: the alert read (ERR_BAD_SSL_CLIENT_AUTH_CERT), or, in
    # Chromium 156.0.8078.114, the socket the server closed after it.
    assert failed[0][1] in ("net::ERR_BAD_SSL_CLIENT_AUTH_CERT", "net::ERR_SOCKET_NOT_CONNECTED"), failed
    # The refusal itself, read by curl: TLS alert certificate required.
    got = server.curl(server.cert_url + "/cert-login")
    assert got.returncode != 0 and b"alert certificate required" in got.stderr, got
    page.context.close()
