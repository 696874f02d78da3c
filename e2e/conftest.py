"""Fixtures of the end-to-end suite: the real release binary on a free port
with a fresh data directory, and headless Debian Chromium that trusts the
demo CA through its own NSS store (no certificate errors are ignored)."""

import os
import re
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest
from playwright.sync_api import Error as PlaywrightError, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
BINARY = ROOT / "target" / "release" / "shomei"
SCREENSHOTS = ROOT / "target" / "screenshots"
CHROMIUM = "/usr/bin/chromium"

LOGIN_PW = "Shomei#Demo1"
CONFIRM_PW = "Shomei#Kakunin1"
# How long to wait for what the server does in the background (a CRL after a
# revocation, a notice at the next round): far more than it takes, so that a
# busy machine does not fail a test.
EVENTUALLY = 30


class Server:
    def __init__(self, proc, url, data_dir, output, config=None, env=None):
        self.proc = proc
        self.url = url  # https://localhost:PORT
        self.data_dir = data_dir
        self.output = output
        # The CLI runs with the server's configuration file and environment.
        self.cli_extra = ["--config", str(config)] if config else []
        self.env = env

    @property
    def binary_dir(self):
        return BINARY.parent

    @property
    def root_ca(self):
        return self.data_dir / "ca" / "root-ca.crt"

    def cli(self, *args):
        """Runs the shomei CLI against this server's data directory."""
        out = subprocess.run(
            [str(BINARY), *args, "--data-dir", str(self.data_dir), *self.cli_extra],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
            env=self.env,
        )
        return out.stdout

    def cli_result(self, *args):
        """As `cli`, for a command expected to fail: the whole result."""
        return subprocess.run(
            [str(BINARY), *args, "--data-dir", str(self.data_dir), *self.cli_extra],
            capture_output=True,
            text=True,
            timeout=60,
            env=self.env,
        )

    def curl(self, *args):
        out = subprocess.run(
            ["curl", "-sS", "--cacert", str(self.root_ca), *args],
            capture_output=True,
            timeout=60,
        )
        return out


def crl_url_of(cert_pem) -> str:
    """The URL in a certificate's CRL distribution point: the CRL of the
    partition it names (RFC 5280 §4.2.1.13)."""
    text = subprocess.run(["openssl", "x509", "-in", str(cert_pem), "-noout", "-ext", "crlDistributionPoints"],
                          capture_output=True, text=True, timeout=60, check=True).stdout
    return re.search(r"URI:(\S+)", text).group(1)


def crl_path_of(cert_pem) -> str:
    """The path of `crl_url_of` (`/pki/crl/N`), for a server restarted on
    other ports."""
    url = crl_url_of(cert_pem)
    return url[url.index("/pki/"):]


def crl_text_listing(server, serial_hex, workdir, url, within=EVENTUALLY):
    """Downloads the CRL at `url` until it lists the serial (a revocation is
    in its partition's CRL within a second of 実行 on an idle machine) and
    returns `openssl crl -text` of it."""
    import time
    deadline = time.monotonic() + within
    while True:
        got = server.curl("-o", str(workdir / "crl.der"), url)
        assert got.returncode == 0, got
        out = subprocess.run(["openssl", "crl", "-inform", "DER", "-in", "crl.der", "-noout", "-text"],
                             cwd=workdir, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        if f"Serial Number: {serial_hex.upper()}" in out.stdout or time.monotonic() > deadline:
            return out.stdout
        time.sleep(0.05)


def start_server(tmp: Path, *extra, config=None, env=None, binary=BINARY, listen="127.0.0.1:0") -> Server:
    """Starts `shomei serve --demo` on free ports with data under tmp/data
    (reused if it exists: a restart), with a configuration file and extra
    environment variables if given; `binary` is a copy of the server placed
    elsewhere (the app it hands out is the `shomei-cert` beside it);
    `listen` the portal's address (port 0: free ports for every listener)."""
    assert binary.exists(), "build first: cargo build --release"
    data_dir = tmp / "data"
    env = {**os.environ, "RUST_LOG": "info", **(env or {})}
    config_args = ["--config", str(config)] if config else []
    proc = subprocess.Popen(
        [str(binary), "serve", "--demo", "--data-dir", str(data_dir), "--listen", listen,
         *config_args, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    output = []
    found = threading.Event()
    url = {}

    def pump():
        for line in proc.stdout:
            output.append(line)
            m = re.search(r"Shomei is running: (https://\S+)/login", line)
            if m:
                url["u"] = m.group(1)
            m = re.search(r"Certificate login and EST renewal: (https://\S+)/cert-login", line)
            if m:
                url["cert"] = m.group(1)
            m = re.search(r"CRL and OCSP \(plain HTTP, written into certificates\): (http://\S+)/pki/crl", line)
            if m:
                url["pki"] = m.group(1)
            if "u" in url and "cert" in url and "pki" in url:
                found.set()
        found.set()

    threading.Thread(target=pump, daemon=True).start()
    if not found.wait(60) or "pki" not in url:
        proc.kill()
        raise RuntimeError("server did not start:\n" + "".join(output))
    server = Server(proc, url["u"], data_dir, output, config=config, env=env)
    server.cert_url = url["cert"]
    server.pki_url = url["pki"]
    return server


@pytest.fixture(scope="module")
def server():
    tmp = Path(tempfile.mkdtemp(prefix="shomei-e2e-"))
    s = start_server(tmp)
    yield s
    s.proc.terminate()
    try:
        s.proc.wait(10)
    except subprocess.TimeoutExpired:
        s.proc.kill()
    shutil.rmtree(tmp, ignore_errors=True)


CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def launch(pw, home):
    """Debian's Chromium with `home` as HOME (its NSS database lives there)."""
    return pw.chromium.launch(executable_path=CHROMIUM, env={**os.environ, "HOME": str(home)}, args=CHROMIUM_ARGS)


@pytest.fixture(scope="module")
def pw(server):
    """Playwright, started per module: its Node side must trust this
    module's demo root to present client certificates (Playwright's own
    TLS client reads NODE_EXTRA_CA_CERTS at start)."""
    tmp = Path(tempfile.mkdtemp(prefix="shomei-node-ca-"))
    extra = tmp / "extra-ca.pem"
    previous = os.environ.get("SHOMEI_E2E_SYSTEM_CA", os.environ.get("NODE_EXTRA_CA_CERTS"))
    os.environ["SHOMEI_E2E_SYSTEM_CA"] = previous or ""
    bundle = Path(previous).read_text() if previous and Path(previous).is_file() else ""
    extra.write_text(bundle + server.root_ca.read_text())
    os.environ["NODE_EXTRA_CA_CERTS"] = str(extra)
    with sync_playwright() as p:
        yield p
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def browser(server, pw):
    """Chromium with its own HOME whose NSS database trusts the demo root CA."""
    home = Path(tempfile.mkdtemp(prefix="shomei-chromium-"))
    nssdb = home / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    subprocess.run(["certutil", "-d", f"sql:{nssdb}", "-N", "--empty-password"], check=True, capture_output=True)
    subprocess.run(
        ["certutil", "-d", f"sql:{nssdb}", "-A", "-t", "C,,", "-n", "Shomei demo root", "-i", str(server.root_ca)],
        check=True,
        capture_output=True,
    )
    b = launch(pw, home)
    yield b
    b.close()
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def shot():
    """Saves a full-page screenshot as target/screenshots/NN-name.png, numbered
    in the order the suite takes them (the directory is emptied first)."""
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    SCREENSHOTS.mkdir(parents=True)
    counter = {"n": 0}

    def take(page, name):
        counter["n"] += 1
        path = str(SCREENSHOTS / f"{counter['n']:02d}-{name}.png")
        # Headless Chromium on a loaded machine now and then fails to
        # capture a full page ("Unable to capture screenshot"), the page
        # itself being fine (the test checked it before the photo): that one
        # error is tried again, twice; any other fails the test at once.
        for attempt in range(3):
            try:
                page.screenshot(path=path, full_page=True)
                return
            except PlaywrightError as e:
                if "Unable to capture screenshot" not in str(e) or attempt == 2:
                    raise

    return take
