"""Password spraying as a customer's browser sees it: one wrong password
tried on several login IDs from one address (each ID far from its own
lockout) shuts that address out for a while, with its own message on the
login page — even the right password of another user is then refused."""

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from playwright.sync_api import expect

from conftest import start_server
from test_portal import login, new_page


@pytest.fixture(scope="module")
def server():
    """This module's own server: three failures from one address within ten
    minutes shut it out (the default is 50)."""
    tmp = Path(tempfile.mkdtemp(prefix="shomei-spray-"))
    config = tmp / "shomei.toml"
    config.write_text("[settings]\naddress_failure_limit = 3\naddress_window_minutes = 10\n")
    s = start_server(tmp, config=config)
    yield s
    s.proc.terminate()
    try:
        s.proc.wait(10)
    except subprocess.TimeoutExpired:
        s.proc.kill()
    shutil.rmtree(tmp, ignore_errors=True)


def test_an_address_spraying_one_password_is_shut_out(server, browser, shot):
    page = new_page(browser)
    for who in ["ichirodt", "tarodt", "sachikodt"]:
        login(page, server, who, "Spring2026")
        expect(page.get_by_role("alert")).to_contain_text("ログインできませんでした")
    login(page, server, "hanakodt")
    expect(page.get_by_role("alert")).to_contain_text(
        "ご利用の接続元からのログインの失敗が続いたため、しばらくの間ログインできません。")
    shot(page, "login-address-shut-out")
    # The bank sees the shut-out and the refused attempt in 操作履歴 (bank-wide rows).
    export = server.cli("audit", "export", "--json")
    assert "接続元からの失敗が10分間に3回に達したため、10分間受け付けを停止" in export
    assert "接続元からの失敗が多いため受け付け停止中" in export
    page.context.close()
