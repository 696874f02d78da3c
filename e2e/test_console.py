"""The operator console in headless Chromium with operator certificates
(Playwright's client_certificates): a help-desk operator logs in (OPR000),
finds a customer (OPR010, OPR011), lifts a lock (OPR012), resets a password
(OPR014) and revokes the customer's certificate on a phone request (OPR013);
the customer's certificate, which logged in just before, is refused at the
next handshake with the TLS alert certificate_revoked. A 監査 operator reads
the 操作履歴 (OPR030), downloads it as CSV and checks the chains (OPR032,
OPR033). Every console screen is photographed to
target/screenshots/console-*.png."""

import json
import re
import subprocess
import time

from playwright.sync_api import expect

from conftest import EVENTUALLY, SCREENSHOTS

P12_PW = "Shomei#P12demo"


def console_url(server):
    for line in server.output:
        m = re.search(r"Operator console \(.*\): (https://\S+?)/?\s", line)
        if m:
            return m.group(1)
    raise AssertionError("the server did not say where its console listens:\n" + "".join(server.output))


def pem_of(p12, password, out):
    """The certificate and key of a PKCS#12 as two PEM files."""
    cert, key = out.with_suffix(".crt"), out.with_suffix(".key")
    for args, path in ((["-nokeys"], cert), (["-nocerts", "-nodes"], key)):
        subprocess.run(["openssl", "pkcs12", "-in", str(p12), "-passin", f"pass:{password}", *args,
                        "-out", str(path)], check=True, capture_output=True, timeout=60)
    return cert, key


def add_operator(server, tmp_path, name, role):
    """`shomei operator add` on the server's shell: the operator's PEM files
    and their confirmation password."""
    p12 = tmp_path / f"{name}.p12"
    if not json.loads(server.cli("operator", "list", "--json")):
        # The first operator is the bank's 運用管理者, added directly; the
        # shell adds the others as break-glass (they would otherwise wait
        # for a second 運用管理者's approval in the console).
        root = tmp_path / "root.p12"
        server.cli("operator", "add", "--name", "root", "--role", "operations-admin", "--out", str(root), "--json")
    added = json.loads(server.cli("operator", "add", "--name", name, "--role", role, "--out", str(p12), "--json",
                                  "--break-glass", "--reason", "試験環境の準備"))
    cert, key = pem_of(p12, added["p12_password"], tmp_path / name)
    return cert, key, added["confirm_password"]


def photograph(page, name):
    page.screenshot(path=str(SCREENSHOTS / f"console-{name}.png"), full_page=True)


def console_page(browser, origin, cert, key):
    ctx = browser.new_context(locale="ja-JP", client_certificates=[{
        "origin": origin, "certPath": str(cert), "keyPath": str(key)}])
    return ctx, ctx.new_page()


def log_in(page, origin, password, name):
    page.goto(origin + "/opr000")
    expect(page.locator(".screen-id")).to_have_text("OPR000")
    expect(page.locator(".who .user")).to_contain_text(name)
    photograph(page, f"opr000-{name}")
    page.locator("#password").fill(password)
    page.locator("#login-submit").click()
    expect(page.locator(".screen-id")).to_have_text("OPR001")


def customer_login(server, cert, key):
    return server.curl("--cert", str(cert), "--key", str(key), "-o", "/dev/null", "-w", "%{http_code}",
                       server.cert_url + "/cert-login")


def lock_by_wrong_passwords(server, work, login_id):
    """Three wrong login passwords: the login password is 一時停止."""
    jar = str(work / f"{login_id}.jar")
    for _ in range(3):
        body = server.curl("-b", jar, "-c", jar, server.url + "/login").stdout.decode()
        csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', body).group(1)
        server.curl("-b", jar, "-c", jar, "--data-urlencode", f"csrf={csrf}", "--data-urlencode",
                    f"login_id={login_id}", "--data-urlencode", "password=wrong-Password-1", server.url + "/login")


def test_the_help_desk_revokes_on_a_phone_request_and_the_customers_next_login_is_refused(
        server, browser, shot, tmp_path):
    origin = console_url(server)
    cert, key, password = add_operator(server, tmp_path, "sato", "helpdesk")
    customer = pem_of(server.data_dir / "demo-certs" / "hottojr01.p12", P12_PW, tmp_path / "hottojr01")

    # The positive control: the customer's certificate logs in, in Chromium
    # and by curl, before the call.
    cctx, cpage = console_page(browser, server.cert_url, *customer)
    cpage.goto(server.cert_url + "/cert-login")
    expect(cpage.locator("h1")).to_have_text("電子証明書方式ログイン")
    expect(cpage.locator("#cert-login-id")).to_have_text("hottojr01")
    photograph(cpage, "customer-before")
    cctx.close()
    before = customer_login(server, *customer)
    assert before.returncode == 0 and before.stdout.decode() == "200", before

    ctx, page = console_page(browser, origin, cert, key)
    log_in(page, origin, password, "sato")
    expect(page.locator("#tasks")).to_contain_text("利用者検索")
    photograph(page, "opr001-helpdesk")

    # OPR010: the customer by a prefix of their login ID.
    page.get_by_role("link", name="利用者検索").first.click()
    page.locator("#q").fill("hottojr")
    page.locator("#search").click()
    expect(page.locator(".screen-id")).to_have_text("OPR010")
    expect(page.locator("#hits tbody tr")).to_have_count(2)
    photograph(page, "opr010")

    # OPR012: a lock lifted (hottojr02 typed three wrong passwords).
    lock_by_wrong_passwords(server, tmp_path, "hottojr02")
    page.locator("#u-hottojr02").click()
    expect(page.locator(".screen-id")).to_have_text("OPR011")
    expect(page.locator("#states")).to_contain_text("一時停止")
    photograph(page, "opr011-locked")
    page.locator("#lift-password").fill(password)
    page.locator("#lift").click()
    expect(page.locator(".screen-id")).to_have_text("OPR012")
    expect(page.locator("#done")).to_have_text("一時停止・利用停止を解除しました。")
    photograph(page, "opr012")

    # OPR014: hottojr02's login password reset to a one-time initial one.
    page.get_by_role("link", name="< 利用者詳細へ").click()
    page.locator("#reset-password").fill(password)
    page.locator("#reset").click()
    expect(page.locator(".screen-id")).to_have_text("OPR014")
    initial = page.locator("#initial-password").inner_text()
    assert len(initial) == 12, initial
    photograph(page, "opr014")

    # A マスター's reset needs approval: the detail says so, no form.
    page.goto(origin + "/opr011?id=hottojr01")
    expect(page.locator("#reset-master")).to_contain_text("承認が必要です")
    expect(page.locator("#reset")).to_have_count(0)
    photograph(page, "opr011")

    # OPR013: the phone call, "our PC was stolen".
    page.locator("#reason").select_option("1")
    page.locator("#caller").fill("経理部 山田様（マスターユーザ）")
    page.locator("#revoke-password").fill(password)
    page.locator("#revoke").click()
    expect(page.locator(".screen-id")).to_have_text("OPR013")
    expect(page.locator("#done")).to_contain_text("電子証明書を失効しました。")
    photograph(page, "opr013")

    # The customer's next certificate login is refused in the handshake,
    # with the alert certificate_revoked (curl names it).
    deadline = time.monotonic() + EVENTUALLY
    while (refused := customer_login(server, *customer)).returncode == 0:
        assert time.monotonic() < deadline, "still accepted after the phone revocation"
        time.sleep(0.02)
    assert b"certificate revoked" in refused.stderr, refused.stderr
    # And Chromium gets no page of the portal with it.
    cctx, cpage = console_page(browser, server.cert_url, *customer)
    try:
        cpage.goto(server.cert_url + "/cert-login")
    except Exception:
        pass  # the navigation itself may fail: the handshake was refused
    expect(cpage.locator("#cert-login-id")).to_have_count(0)
    # Playwright's certificate proxy shows the handshake's alert as the page.
    refusal = cpage.content()
    assert "alert certificate revoked" in refusal and "電子証明書方式ログイン" not in refusal, refusal
    photograph(cpage, "customer-after")
    cctx.close()

    # The help desk is no 監査: OPR030 refuses, by its message.
    page.goto(origin + "/opr030")
    expect(page.get_by_role("alert")).to_have_text("この操作は監査の役割を持つオペレーターだけが行えます。")
    photograph(page, "refused")
    page.locator("#logout").click()
    expect(page.locator(".screen-id")).to_have_text("OPR000")
    ctx.close()

    # A 監査 reads the call in 操作履歴, downloads it and checks the chains.
    cert, key, password = add_operator(server, tmp_path, "suzuki", "audit")
    ctx, page = console_page(browser, origin, cert, key)
    log_in(page, origin, password, "suzuki")
    photograph(page, "opr001-audit")
    page.get_by_role("link", name="操作履歴照会").first.click()
    page.locator("#actor").fill("sato")
    page.locator("#op").select_option("証明書失効")
    page.locator("#search").click()
    expect(page.locator(".screen-id")).to_have_text("OPR030")
    expect(page.locator("#history tbody tr")).to_have_count(1)
    expect(page.locator("#history tbody tr")).to_contain_text("依頼者: 経理部 山田様（マスターユーザ）")
    photograph(page, "opr030")
    with page.expect_download() as d:
        page.locator("#csv").click()
    text = open(d.value.path(), encoding="utf-8-sig").read()
    assert text.startswith("日時,企業ID,企業名,操作者,操作,対象利用者,結果,詳細,接続元"), text
    assert "銀行:sato" in text and "証明書失効" in text, text
    page.goto(origin + "/opr032")
    expect(page.locator(".screen-id")).to_have_text("OPR032")
    photograph(page, "opr032")
    page.locator("#verify").click()
    expect(page.locator(".screen-id")).to_have_text("OPR033")
    expect(page.locator("#intact")).to_have_text("操作履歴の改ざんは検出されませんでした。")
    photograph(page, "opr033")
    ctx.close()
    # The CLI's verification agrees.
    assert "ok" in server.cli("audit", "verify").lower()


def result_value(page, label):
    """The value beside `label` on a result screen (OPR024, OPR052, …)."""
    return page.locator("#result tr", has=page.locator("th", has_text=label)).locator("td").inner_text()


def test_a_company_opened_by_one_operator_and_approved_by_another_whose_master_then_logs_in(
        server, browser, tmp_path):
    origin = console_url(server)
    tanaka = add_operator(server, tmp_path, "tanaka", "business-admin")
    kato = add_operator(server, tmp_path, "kato", "business-admin")

    # The requester, a 業務管理者: OPR020 → OPR023 → OPR024.
    ctx, page = console_page(browser, origin, *tanaka[:2])
    log_in(page, origin, tanaka[2], "tanaka")
    photograph(page, "opr001-business")
    page.get_by_role("link", name="企業管理").first.click()
    expect(page.locator(".screen-id")).to_have_text("OPR020")
    expect(page.locator("#companies")).to_contain_text("ほっと君WebJr.")
    photograph(page, "opr020")
    page.locator("#open").click()
    expect(page.locator(".screen-id")).to_have_text("OPR023")
    photograph(page, "opr023")
    page.locator("#company").fill("株式会社承認商事")
    page.locator("#service").select_option("business_ib")
    page.locator("#login_id").fill("shonin01")
    page.locator("#name").fill("承認 花子")
    page.locator("#email").fill("shonin@example.jp")
    # A wrong re-confirmation password: refused on the form, kept filled.
    page.locator("#password").fill("not-my-password")
    page.locator("#submit").click()
    expect(page.get_by_role("alert")).to_contain_text("パスワードが正しくありません。")
    expect(page.locator("#company")).to_have_value("株式会社承認商事")
    photograph(page, "opr023-wrong-password")
    page.locator("#password").fill(tanaka[2])
    page.locator("#submit").click()
    expect(page.locator(".screen-id")).to_have_text("OPR024")
    expect(page.locator("#done")).to_contain_text("申請を受け付けました。")
    request = result_value(page, "申請番号")
    photograph(page, "opr024")

    # The requester may not approve their own request.
    page.get_by_role("link", name="申請詳細へ").click()
    expect(page.locator(".screen-id")).to_have_text("OPR051")
    page.locator("#password").fill(tanaka[2])
    page.locator("#approve").click()
    expect(page.get_by_role("alert")).to_have_text(
        "ご自身が申請した変更は承認できません。ほかのオペレーターの承認が必要です。")
    expect(page.locator("#state")).to_have_text("承認待ち")
    photograph(page, "opr051-own-request")

    # The other screens of the 業務管理者: 解約 (OPR021) and マスター登録
    # (OPR022) of a demo company, the first of them submitted, to be
    # rejected below.
    page.goto(origin + "/opr020")
    page.locator("[id^=close-]").first.click()
    expect(page.locator(".screen-id")).to_have_text("OPR021")
    photograph(page, "opr021")
    closing = page.locator("input[name=company_id]").get_attribute("value")
    page.locator("#password").fill(tanaka[2])
    page.locator("#submit").click()
    expect(page.locator(".screen-id")).to_have_text("OPR024")
    close_request = result_value(page, "申請番号")
    page.goto(origin + f"/opr022?company={closing}")
    expect(page.locator(".screen-id")).to_have_text("OPR022")
    photograph(page, "opr022")
    page.locator("#logout").click()
    ctx.close()

    # The approver, another 業務管理者: OPR050 → OPR051 → OPR052 with the
    # new マスター's one-time passwords.
    ctx, page = console_page(browser, origin, *kato[:2])
    log_in(page, origin, kato[2], "kato")
    page.get_by_role("link", name="承認待ち一覧").first.click()
    expect(page.locator(".screen-id")).to_have_text("OPR050")
    expect(page.locator("#requests tbody tr")).to_have_count(2)
    photograph(page, "opr050")
    page.locator(f"#r-{request}").click()
    expect(page.locator(".screen-id")).to_have_text("OPR051")
    expect(page.locator("#change")).to_contain_text("株式会社承認商事")
    expect(page.locator("#change")).to_contain_text("shonin01")
    photograph(page, "opr051")
    page.locator("#password").fill(kato[2])
    page.locator("#approve").click()
    expect(page.locator(".screen-id")).to_have_text("OPR052")
    expect(page.locator("#done")).to_contain_text("初期パスワードはこの画面に一度だけ表示されます")
    assert result_value(page, "マスターのログインID") == "shonin01"
    login_pw = result_value(page, "初期ログインパスワード")
    confirm_pw = result_value(page, "初期確認用パスワード")
    assert len(login_pw) == 12 and len(confirm_pw) == 12, (login_pw, confirm_pw)
    photograph(page, "opr052")

    # OPR053: the close request rejected; the company stays open.
    page.goto(origin + f"/opr051?id={close_request}")
    page.locator("#password").fill(kato[2])
    page.locator("#reject").click()
    expect(page.locator(".screen-id")).to_have_text("OPR053")
    expect(page.locator("#done")).to_contain_text("申請を否認しました。")
    photograph(page, "opr053")
    page.goto(origin + "/opr050?all=1")
    expect(page.locator("#requests")).to_contain_text("否認")
    expect(page.locator("#requests")).to_contain_text("承認済み（実行済み）")
    photograph(page, "opr050-all")
    page.goto(origin + "/opr020")
    expect(page.locator(f"#c-{closing}")).to_contain_text("契約中")
    expect(page.locator("#companies")).to_contain_text("株式会社承認商事")

    # The 業務管理者 is no 運用管理者: OPR040 refuses, by its message.
    page.goto(origin + "/opr040")
    expect(page.get_by_role("alert")).to_have_text("この操作は運用管理者の役割を持つオペレーターだけが行えます。")
    ctx.close()

    # The 運用管理者's screens: OPR040, OPR041 and OPR042.
    ito = add_operator(server, tmp_path, "ito", "operations-admin")
    ctx, page = console_page(browser, origin, *ito[:2])
    log_in(page, origin, ito[2], "ito")
    photograph(page, "opr001-operations")
    page.get_by_role("link", name="オペレーター管理").first.click()
    expect(page.locator(".screen-id")).to_have_text("OPR040")
    expect(page.locator("#operators")).to_contain_text("tanaka")
    photograph(page, "opr040")
    page.goto(origin + "/opr041?name=tanaka")
    expect(page.locator(".screen-id")).to_have_text("OPR041")
    photograph(page, "opr041")
    page.goto(origin + "/opr042")
    expect(page.locator(".screen-id")).to_have_text("OPR042")
    expect(page.locator("#rules")).to_contain_text("企業開設（マスター登録を含む）")
    photograph(page, "opr042")
    ctx.close()

    # The new マスター logs in to the portal with the one-time password and
    # must change both passwords before anything else.
    mctx = browser.new_context(locale="ja-JP", viewport={"width": 1200, "height": 900})
    mpage = mctx.new_page()
    mpage.goto(server.url + "/login")
    mpage.get_by_label("ログインID").fill("shonin01")
    mpage.get_by_label("ログインパスワード").fill(login_pw)
    mpage.locator("section.idpw").get_by_role("button", name="ログイン").click()
    expect(mpage.locator(".screen-id")).to_have_text("BRSK002")
    photograph(mpage, "master-brsk002-login")
    mpage.locator("input[name=kind][value=login]").check()
    mpage.locator("#current").fill(login_pw)
    mpage.locator("#new").fill("Shonin#Login2")
    mpage.locator("#again").fill("Shonin#Login2")
    mpage.locator("#change").click()
    expect(mpage.locator(".screen-id")).to_have_text("BRSK003")
    mpage.goto(server.url + "/top")
    expect(mpage.locator(".screen-id")).to_have_text("BRSK002")
    expect(mpage.locator("input[name=kind][value=confirm]")).to_be_checked()
    photograph(mpage, "master-brsk002-confirm")
    mpage.locator("#current").fill(confirm_pw)
    mpage.locator("#new").fill("Shonin#Kakunin2")
    mpage.locator("#again").fill("Shonin#Kakunin2")
    mpage.locator("#change").click()
    expect(mpage.locator(".screen-id")).to_have_text("BRSK003")
    mpage.goto(server.url + "/top")
    expect(mpage).to_have_url(re.compile(r"/top$"))
    expect(mpage.locator(".who")).to_contain_text("承認 花子")
    photograph(mpage, "master-top")
    mctx.close()


def test_a_business_admin_changes_a_companys_service_and_its_user_limit(server, browser, tmp_path):
    origin = console_url(server)
    mori = add_operator(server, tmp_path, "mori", "business-admin")
    ctx, page = console_page(browser, origin, *mori[:2])
    log_in(page, origin, mori[2], "mori")
    page.get_by_role("link", name="企業管理").first.click()
    row = page.locator("#companies tbody tr", has_text="有限会社ほっと物産")
    expect(row).to_contain_text("ほっと君WebJr.")
    row.get_by_role("link", name="サービス変更").click()
    expect(page.locator(".screen-id")).to_have_text("OPR025")
    expect(page.locator("#current")).to_have_text("ほっと君WebJr.")
    expect(page.locator("#users")).to_contain_text("（上限 10人）")
    photograph(page, "opr025")
    # The service it has already: refused by its message.
    page.locator("#s-hottokun_webjr").check()
    page.locator("#password").fill(mori[2])
    page.locator("#change").click()
    expect(page.get_by_role("alert")).to_have_text(
        "現在と同じ契約サービスです。変更後の契約サービスを選択してください。")
    photograph(page, "opr025-same-service")
    page.locator("#s-business_ib").check()
    page.locator("#password").fill(mori[2])
    page.locator("#change").click()
    expect(page.locator(".screen-id")).to_have_text("OPR026")
    expect(page.locator("#done")).to_have_text(
        "契約サービスを変更しました。利用者数の上限は、次の操作から新しい契約サービスのものになります。")
    assert result_value(page, "変更後の契約サービス") == "ビジネスIB（利用者数の上限 100人）"
    photograph(page, "opr026")
    page.get_by_role("link", name="< 企業一覧へ").click()
    expect(page.locator("#companies tbody tr", has_text="有限会社ほっと物産")).to_contain_text("ビジネスIB")
    ctx.close()
    # The CLI sees the change and its 操作履歴 row.
    shown = json.loads(server.cli("company", "show", "--id", "2", "--json"))
    assert shown["service"] == "business_ib", shown
    rows = [json.loads(line) for line in server.cli("audit", "export", "--company-id", "2", "--json").splitlines()]
    changes = [(r["actor"], r["result"], r["detail"]) for r in rows if r["operation"] == "契約サービス変更"]
    assert changes == [("銀行:mori", "成功", "契約サービス: ほっと君WebJr. → ビジネスIB（利用者数上限 100人）")], changes
