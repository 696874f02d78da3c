"""Notices go out over SMTP with STARTTLS to a real SMTP server (aiosmtpd on
loopback, which refuses mail before STARTTLS): tarodt's 更新可 notice at the
first upkeep round, and when ichirodt locks herself out, one to each of the
company's マスター and 管理者 users — once each."""

import email
import email.policy
import re
import shutil
import socket
import ssl
import tempfile
import time
from pathlib import Path

from aiosmtpd.controller import Controller

from conftest import start_server


class Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        if not session.ssl:
            return "530 STARTTLS first"
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_notices_go_over_smtp_with_starttls_once():
    tmp = Path(tempfile.mkdtemp(prefix="shomei-notices-"))
    # A first start makes the CA; the SMTP server uses its localhost certificate.
    first = start_server(tmp)
    first.proc.terminate()
    first.proc.wait(30)
    ca = tmp / "data" / "ca"
    chain = tmp / "smtp-chain.pem"
    chain.write_text((ca / "server.crt").read_text() + (ca / "issuing-ca.crt").read_text())
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(chain), str(ca / "server.key"))
    inbox = Inbox()
    port = free_port()
    smtp = Controller(inbox, hostname="127.0.0.1", port=port, tls_context=ctx, require_starttls=True)
    smtp.start()
    config = tmp / "shomei.toml"
    config.write_text(
        "[settings]\n"
        'smtp_host = "localhost"\n'
        f"smtp_port = {port}\n"
        f'smtp_ca_file = "{ca / "root-ca.crt"}"\n'
        "upkeep_interval_seconds = 1\n"
    )
    server = start_server(tmp, "--config", str(config))
    try:
        deadline = time.monotonic() + 10
        while not inbox.messages and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(inbox.messages) == 1, [m["To"] for m in inbox.messages]
        renewal = inbox.messages[0]
        assert "tarodt@example.jp" in renewal["To"]
        assert renewal["Subject"].endswith("電子証明書の更新のお知らせ")
        assert "有効期限" in renewal.get_content()

        # ichirodt locks herself out with three wrong passwords.
        jar = str(tmp / "jar")
        for _ in range(3):
            body = server.curl("-b", jar, "-c", jar, server.url + "/login").stdout.decode()
            csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', body).group(1)
            server.curl("-b", jar, "-c", jar, "--data-urlencode", f"csrf={csrf}", "--data-urlencode",
                        "login_id=ichirodt", "--data-urlencode", "password=Wrong#1234", server.url + "/login")
        deadline = time.monotonic() + 10
        while len(inbox.messages) < 4 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(2.5)  # two more rounds: nothing is sent twice
        locks = inbox.messages[1:]
        assert sorted(m["To"].addresses[0].addr_spec for m in locks) == [
            "hanakodt@example.jp", "jirodt@example.jp", "tarodt@example.jp"], [m["To"] for m in locks]
        assert all("ichirodt" in m.get_content() for m in locks)
    finally:
        server.proc.terminate()
        server.proc.wait(30)
        smtp.stop()
        shutil.rmtree(tmp, ignore_errors=True)
