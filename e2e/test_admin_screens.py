"""The 管理業務 screens a マスター user reaches, clicked through in headless
Chromium with screenshots: 企業管理 (BSSK002 → BSSK003 → BSSK004),
利用者変更 (BRSK014 → BRSK013) and パスワード変更 (BRSK002 → BRSK003)."""

from playwright.sync_api import expect

from conftest import CONFIRM_PW, LOGIN_PW
from test_portal import login, new_page, screen


def test_the_master_edits_the_company_a_user_and_a_password(server, browser, shot):
    page = new_page(browser)
    try:
        login(page, server, "jirodt")
        page.goto(server.url + "/bssk001")
        page.get_by_role("link", name="企業管理").click()
        screen(page, "管理業務 企業管理", "BSSK002")
        page.get_by_role("link", name="変更 >").click()
        screen(page, "管理業務 企業情報変更", "BSSK003")
        page.get_by_label("担当者名").fill("総務部 北銀")
        page.get_by_label("電話番号").fill("076-000-0000")
        page.get_by_label("メールアドレス").fill("soumu@example.jp")
        page.get_by_label("確認パスワード").fill(CONFIRM_PW)
        shot(page, "BSSK003")
        page.get_by_role("button", name="実行 >").click()
        screen(page, "管理業務 企業情報変更結果", "BSSK004")
        shot(page, "BSSK004")
        page.get_by_role("link", name="企業管理へ").click()
        expect(page.locator("#contact")).to_contain_text("076-000-0000")

        page.goto(server.url + "/brsk011")
        page.locator("#edit-ichirodt").click()
        screen(page, "利用者管理 利用者変更", "BRSK014")
        page.get_by_label("利用者名").fill("データ朗（経理）")
        page.get_by_label("確認パスワード").fill(CONFIRM_PW)
        shot(page, "BRSK014")
        page.get_by_role("button", name="実行 >").click()
        screen(page, "利用者管理 利用者情報管理結果", "BRSK013")
        page.get_by_role("link", name="利用者一覧へ").click()
        expect(page.locator("#users")).to_contain_text("データ朗（経理）")

        page.goto(server.url + "/brsk002")
        page.get_by_label("現在のパスワード").fill(LOGIN_PW)
        page.get_by_label("新しいパスワード", exact=True).fill("Master#2026new")
        page.get_by_label("新しいパスワード（確認用）").fill("Master#2026new")
        page.get_by_role("button", name="変更 >").click()
        screen(page, "利用者管理 パスワード変更結果", "BRSK003")
        shot(page, "BRSK003")
    finally:
        page.context.close()
