"""The issuing CA's key in a PKCS#11 token (SoftHSM, a real PKCS#11 module):
generated in the token on the first start and never written to disk (the
token says it is sensitive, never extractable, for signing only); client
certificates, the OCSP signer and the CRLs are signed by the token and
verify with openssl; a restart finds the key again; the operator's CLI uses
it too; a backup says the key is not in it; the PIN from the environment or
pkcs11_pin_file; a wrong PIN, a missing token configuration or another CA's
key in the token stops the start with a clear message."""

import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import BINARY, EVENTUALLY, crl_url_of, start_server
from test_issuance import enroll_with_openssl_and_curl, run

MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")
PIN = "428571"


def stop(server):
    server.proc.terminate()
    try:
        server.proc.wait(10)
    except subprocess.TimeoutExpired:
        server.proc.kill()


@pytest.fixture()
def token(tmp_path):
    """A fresh SoftHSM token in its own directory, and a Shomei config using it."""
    (tmp_path / "tokens").mkdir()
    conf = tmp_path / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tmp_path / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n")
    env = {"SOFTHSM2_CONF": str(conf), "SHOMEI_PKCS11_PIN": PIN}
    out = subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", "shomei-e2e",
                          "--pin", PIN, "--so-pin", "14285714"],
                         capture_output=True, text=True, timeout=60, env={**env, "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stdout + out.stderr
    config = tmp_path / "shomei.toml"
    config.write_text(f'[settings]\npkcs11_module = "{MODULE}"\npkcs11_token_label = "shomei-e2e"\n')
    return config, env


def printed(server, line, within=EVENTUALLY):
    """Whether the server prints `line` (its start-up lines come one by one)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if any(line in out for out in list(server.output)):
            return True
        time.sleep(0.05)
    return False


def start_failure(tmp, config, env):
    """Starts the server expecting it to refuse: its last line of output."""
    args = [str(BINARY), "serve", "--data-dir", str(tmp / "data"), "--listen", "127.0.0.1:0"]
    if config:
        args += ["--config", str(config)]
    out = subprocess.run(args, capture_output=True, text=True, timeout=60, env={**os.environ, **env})
    assert out.returncode != 0, out.stdout
    return out.stderr.strip().splitlines()[-1]


def test_the_issuing_ca_key_lives_in_the_token(token):
    config, env = token
    tmp = Path(tempfile.mkdtemp(prefix="shomei-hsm-"))
    work = tmp / "work"
    work.mkdir()
    server = start_server(tmp, config=config, env=env)
    try:
        said = 'Issuing CA key: key "shomei-issuing-ca" in PKCS#11 token "shomei-e2e" (sensitive, never extractable)'
        assert printed(server, said), "".join(server.output)
        ca = server.data_dir / "ca"
        assert not (ca / "issuing-ca.key").exists(), "the issuing key is not on disk"
        # What the token itself says of the key, read by a PKCS#11 tool of its
        # own (OpenSC's pkcs11-tool), not by Shomei: the private key signs and
        # does nothing else, sensitive and never extractable; its public key
        # verifies only, and is the issuing CA certificate's.
        listed = subprocess.run(["pkcs11-tool", "--module", str(MODULE), "--token-label", "shomei-e2e", "--login",
                                 "--pin", PIN, "--list-objects"], capture_output=True, text=True, timeout=60,
                                env={**os.environ, **env})
        assert listed.returncode == 0, listed.stdout + listed.stderr
        objects = {b.split(";")[0]: b for b in re.split(r"\n(?=\S)", listed.stdout.strip())}
        private, public = objects["Private Key Object"], objects["Public Key Object"]
        for block in (private, public):
            assert re.search(r"^\s*label:\s+shomei-issuing-ca$", block, re.M), listed.stdout
        assert re.search(r"^\s*Usage:\s+sign$", private, re.M), private
        assert re.search(r"^\s*Access:\s+sensitive, always sensitive, never extractable, local$", private,
                         re.M), private
        assert re.search(r"^\s*Usage:\s+verify$", public, re.M), public
        point = re.search(r"^\s*EC_POINT:\s+0441([0-9a-f]{130})$", public, re.M).group(1)
        spki = subprocess.run(["openssl", "x509", "-in", str(ca / "issuing-ca.crt"), "-noout", "-pubkey"],
                              capture_output=True, timeout=60, check=True).stdout
        der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=spki,
                             capture_output=True, timeout=60, check=True).stdout
        assert der[-65:].hex() == point, "the token's key is the issuing CA's"
        (work / "chain.pem").write_text((ca / "root-ca.crt").read_text() + (ca / "issuing-ca.crt").read_text())

        # Certificates the token signed verify under the root.
        status, _ = enroll_with_openssl_and_curl(server, work, "jirodt", "jiro")
        assert status == "200"
        for cert in [work / "jiro.crt", ca / "ocsp-signer.crt", ca / "server.crt"]:
            got = run("openssl", "verify", "-CAfile", "chain.pem", str(cert), cwd=work)
            assert got.stdout.strip().endswith("OK"), got.stdout
        assert server.curl("--cert", str(work / "jiro.crt"), "--key", str(work / "jiro.key"),
                           server.cert_url + "/cert-login").returncode == 0

        # A revocation by the operator's CLI (same token); the CRL it leads
        # to is signed by the token and lists the serial; OCSP agrees.
        server.cli("cert", "revoke", "--login-id", "jirodt", "--reason", "key-compromise")
        serial = run("openssl", "x509", "-in", "jiro.crt", "-noout", "-serial", cwd=work).stdout.split("=")[1].strip()
        deadline = time.monotonic() + EVENTUALLY
        while True:
            server.curl("-o", str(work / "crl.der"), crl_url_of(work / "jiro.crt"))
            crl = run("openssl", "crl", "-inform", "DER", "-in", "crl.der", "-CAfile", "chain.pem",
                      "-noout", "-text", cwd=work, check=False)
            if f"Serial Number: {serial}" in crl.stdout or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert "verify OK" in crl.stderr + crl.stdout, crl.stderr
        assert f"Serial Number: {serial}" in crl.stdout
        ocsp = run("openssl", "ocsp", "-issuer", str(ca / "issuing-ca.crt"), "-CAfile", "chain.pem",
                   "-cert", "jiro.crt", "-url", server.pki_url + "/pki/ocsp", cwd=work)
        assert "Response verify OK" in ocsp.stdout + ocsp.stderr and "jiro.crt: revoked" in ocsp.stdout

        # `shomei crl export` signs with the token too.
        server.cli("crl", "export", "--out", str(work / "export.crl"))
        got = run("openssl", "crl", "-inform", "DER", "-in", "export.crl", "-CAfile", "chain.pem", "-noout",
                  cwd=work)
        assert "verify OK" in got.stderr + got.stdout

        # A backup has the CA's certificates but not the key, and its
        # manifest says where the key is (test_backup's, of a key file,
        # does not).
        backup = tmp / "backup"
        said = server.cli("backup", "--out", str(backup))
        manifest = (backup / "MANIFEST.txt").read_text()
        assert manifest in said
        assert ("the issuing CA's key is in a PKCS#11 token, not in this backup: back the token up with the HSM's "
                "own tools") in manifest, manifest
        assert (backup / "ca" / "issuing-ca.crt").read_bytes() == (ca / "issuing-ca.crt").read_bytes()
        assert not (backup / "ca" / "issuing-ca.key").exists()

        # A restart finds the key in the token; issuing still works.
        stop(server)
        server = start_server(tmp, config=config, env=env)
        status, _ = enroll_with_openssl_and_curl(server, work, "jirodt", "jiro2")
        assert status == "200"
        got = run("openssl", "verify", "-CAfile", "chain.pem", "jiro2.crt", cwd=work)
        assert got.stdout.strip().endswith("OK")
        stop(server)

        # Refusals at start, each with its reason.
        assert "check the PIN" in start_failure(tmp, config, {**env, "SHOMEI_PKCS11_PIN": "000000"})
        assert "no PKCS#11 token is configured" in start_failure(tmp, None, env)
        other = tmp / "other.toml"
        other.write_text(config.read_text().replace('"shomei-e2e"', '"no-such-token"'))
        assert 'no token labelled "no-such-token"' in start_failure(tmp, other, env)

        # pkcs11_pin_file instead of the environment: a good PIN starts, a
        # wrong one in the file is refused like a wrong one in the environment.
        no_env_pin = {k: v for k, v in env.items() if k != "SHOMEI_PKCS11_PIN"}
        pin_file = tmp / "pin"
        pin_file.write_text(PIN + "\n")
        pin_file.chmod(0o600)
        with_file = tmp / "pin-file.toml"
        with_file.write_text(config.read_text() + f'pkcs11_pin_file = "{pin_file}"\n')
        server = start_server(tmp, config=with_file, env=no_env_pin)
        status, _ = enroll_with_openssl_and_curl(server, work, "ichirodt", "ichiro")
        assert status == "200"
        stop(server)
        pin_file.write_text("000000\n")
        assert "check the PIN" in start_failure(tmp, with_file, no_env_pin)

        # A token whose key is another CA's (a second data directory made it)
        # does not sign for this one.
        made = subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", "other-e2e", "--pin", PIN,
                               "--so-pin", "14285714"], capture_output=True, text=True, timeout=60,
                              env={**env, "PATH": "/usr/bin:/bin"})
        assert made.returncode == 0, made.stdout + made.stderr
        other_token = tmp / "other-token.toml"
        other_token.write_text(config.read_text().replace('"shomei-e2e"', '"other-e2e"'))
        second = tmp / "second"
        second.mkdir()
        stop(start_server(second, config=other_token, env=env))
        assert "is not the issuing CA certificate's key" in start_failure(tmp, other_token, env)
    finally:
        stop(server)
        shutil.rmtree(tmp, ignore_errors=True)


def test_a_token_key_cannot_replace_an_existing_key_file(token, tmp_path):
    """A CA created with a key file keeps it: configuring a token afterwards
    is refused rather than silently ignored."""
    config, env = token
    tmp = Path(tempfile.mkdtemp(prefix="shomei-hsm-file-"))
    try:
        server = start_server(tmp)
        stop(server)
        assert (tmp / "data" / "ca" / "issuing-ca.key").exists()
        assert "moving a key into a token is not supported" in start_failure(tmp, config, env)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
