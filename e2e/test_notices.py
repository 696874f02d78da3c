"""Notices go out over SMTP with STARTTLS to a real SMTP server (aiosmtpd on
loopback, which refuses mail before STARTTLS): tarodt's 更新可 notice at the
first upkeep round — retried at the next round when the server answers 451 —
and when a user locks herself out, one to each of the company's マスター and
管理者 users, once each. A server that offers no STARTTLS gets nothing."""

import asyncio
import email
import email.policy
import re
import shutil
import socket
import ssl
import tempfile
import threading
import time
from pathlib import Path

from aiosmtpd.smtp import SMTP

from conftest import EVENTUALLY, start_server



class Inbox:
    def __init__(self, fail_first=0):
        self.messages = []
        self.mail_from = 0
        self.ehlo = 0
        self.refused = 0
        self.fail_first = fail_first

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        # A client that reached the SMTP conversation (not a failed connect).
        self.ehlo += 1
        session.host_name = hostname
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        self.mail_from += 1
        envelope.mail_from = address
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if not session.ssl:
            return "530 STARTTLS first"
        if self.fail_first > 0:
            self.fail_first -= 1
            self.refused += 1
            return "451 4.3.0 Try again later"
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"


class SmtpServer:
    """aiosmtpd in a thread, on a port the OS picked for a socket that stays
    bound (no free-port guess that another process could take meanwhile)."""

    def __init__(self, handler, tls_context=None):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        options = {"tls_context": tls_context, "require_starttls": True} if tls_context else {}
        self.loop = asyncio.new_event_loop()
        self.server = self.loop.run_until_complete(
            self.loop.create_server(lambda: SMTP(handler, hostname="localhost", **options), sock=self.sock))
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def wait_for(done, what):
    deadline = time.monotonic() + EVENTUALLY
    while not done():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def lock_out(server, login_id, jar):
    """Three wrong passwords lock the login password."""
    for _ in range(3):
        body = server.curl("-b", jar, "-c", jar, server.url + "/login").stdout.decode()
        csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', body).group(1)
        server.curl("-b", jar, "-c", jar, "--data-urlencode", f"csrf={csrf}", "--data-urlencode",
                    f"login_id={login_id}", "--data-urlencode", "password=Wrong#1234", server.url + "/login")


def config_for(tmp, port, ca=None):
    config = tmp / "shomei.toml"
    config.write_text(
        "[settings]\n"
        'smtp_host = "localhost"\n'
        f"smtp_port = {port}\n"
        + (f'smtp_ca_file = "{ca / "root-ca.crt"}"\n' if ca else "")
        + "upkeep_interval_seconds = 1\n"
    )
    return config


def test_notices_go_over_smtp_with_starttls_once_and_a_refused_send_is_retried():
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
    # The first message is answered 451: the next round sends it again.
    inbox = Inbox(fail_first=1)
    smtp = SmtpServer(inbox, ctx)
    server = start_server(tmp, "--config", str(config_for(tmp, smtp.port, ca)))
    try:
        wait_for(lambda: inbox.messages, "the renewal notice")
        assert inbox.refused == 1
        assert any("notice not sent over SMTP; will retry" in line for line in server.output), server.output
        assert len(inbox.messages) == 1, [m["To"] for m in inbox.messages]
        renewal = inbox.messages[0]
        assert "tarodt@example.jp" in renewal["To"]
        assert renewal["Subject"].endswith("電子証明書の更新のお知らせ")
        assert "有効期限" in renewal.get_content()

        # ichirodt locks herself out with three wrong passwords.
        lock_out(server, "ichirodt", str(tmp / "jar1"))
        wait_for(lambda: len(inbox.messages) >= 4, "the lock notices")
        admins = ["hanakodt@example.jp", "jirodt@example.jp", "tarodt@example.jp"]
        locks = inbox.messages[1:]
        assert sorted(m["To"].addresses[0].addr_spec for m in locks) == admins, [m["To"] for m in locks]
        assert all("ichirodt" in m.get_content() for m in locks)
        # Then sachikodt: the round that sends her lock notices starts after
        # the first four were sent, and sends none of them again.
        lock_out(server, "sachikodt", str(tmp / "jar2"))
        wait_for(lambda: len(inbox.messages) >= 7, "the second lock's notices")
        later = inbox.messages[4:]
        assert sorted(m["To"].addresses[0].addr_spec for m in later) == admins, [m["To"] for m in later]
        assert all("sachikodt" in m.get_content() for m in later), [m.get_content() for m in later]
    finally:
        server.proc.terminate()
        server.proc.wait(30)
        smtp.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def test_a_server_without_starttls_gets_no_mail():
    tmp = Path(tempfile.mkdtemp(prefix="shomei-notices-plain-"))
    inbox = Inbox()
    smtp = SmtpServer(inbox)  # offers no STARTTLS
    server = start_server(tmp, "--config", str(config_for(tmp, smtp.port)))
    try:
        # Two rounds that tried tarodt's renewal notice: each reached the SMTP
        # server (EHLO), found no STARTTLS offered, and gave up before MAIL
        # FROM, saying so (not a connection failure, which prints the same
        # first words).
        refused = lambda: [l for l in list(server.output) if "notice not sent over SMTP; will retry" in l
                           and "STARTTLS is not supported on this server" in l]
        wait_for(lambda: len(refused()) >= 2 and inbox.ehlo >= 2,
                 f"the refused sends ({inbox.ehlo} EHLO):\n" + "".join(server.output))
        assert inbox.mail_from == 0 and inbox.messages == [], "nothing goes out in the clear"
    finally:
        server.proc.terminate()
        server.proc.wait(30)
        smtp.stop()
        shutil.rmtree(tmp, ignore_errors=True)
