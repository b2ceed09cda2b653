"""The submission side: who may send, AUTH only over TLS, slowed-down guessing (real clients)."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from pathlib import Path

import pytest

from gateway.people.users import UsersFile
from tests.certkit import openssl_self_signed
from tests.conftest import build_config, running_gateway
from tests.helpers import in_thread, make_message, smtp_session

COUNCILLOR = "cllr.jones@stanion-pc.gov.uk"
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate made by the real openssl command."""
    return openssl_self_signed(tmp_path_factory.mktemp("tls"), key="rsa")


def _with_user(tmp_path: Path) -> None:
    UsersFile(tmp_path / "users").add(COUNCILLOR, PASSWORD)


async def test_untrusted_client_must_log_in(tmp_path: Path) -> None:
    config = build_config(tmp_path, {"outbound": {"trusted_networks": []}})
    async with running_gateway(config) as gw:
        def steps(c: smtplib.SMTP) -> tuple[int, bytes]:
            c.ehlo("laptop")
            return c.mail(COUNCILLOR)
        code, text = await in_thread(smtp_session, gw.outbound_port, steps)
    assert code == 530 and text.startswith(b"5.7.0")


async def test_trusted_network_may_send_without_login(tmp_path: Path) -> None:
    config = build_config(tmp_path)
    async with running_gateway(config) as gw:
        def steps(c: smtplib.SMTP) -> dict[str, tuple[int, bytes]]:
            c.ehlo("laptop")
            return c.sendmail(COUNCILLOR, ["resident@example.org"],
                              make_message(COUNCILLOR, "resident@example.org"))
        assert await in_thread(smtp_session, gw.outbound_port, steps) == {}
    assert len(list((tmp_path / "outbox" / "new").iterdir())) == 1


async def test_outbound_refuses_foreign_sender_address(tmp_path: Path) -> None:
    config = build_config(tmp_path)
    async with running_gateway(config) as gw:
        def steps(c: smtplib.SMTP) -> tuple[int, bytes]:
            c.ehlo("laptop")
            return c.mail("someone@gmail.example")
        code, text = await in_thread(smtp_session, gw.outbound_port, steps)
    assert code == 553 and b"5.7.1" in text


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
async def test_login_on_loopback_without_tls(tmp_path: Path, mechanism: str) -> None:
    _with_user(tmp_path)
    config = build_config(tmp_path, {"outbound": {"trusted_networks": []}})
    async with running_gateway(config) as gw:
        def steps(c: smtplib.SMTP) -> dict[str, tuple[int, bytes]]:
            c.ehlo("laptop")
            c.user, c.password = COUNCILLOR, PASSWORD
            code, _ = c.auth(mechanism, getattr(c, f"auth_{mechanism.lower()}"),
                             initial_response_ok=mechanism == "PLAIN")
            assert code == 235
            return c.sendmail(COUNCILLOR, ["resident@example.org"],
                              make_message(COUNCILLOR, "resident@example.org"))
        assert await in_thread(smtp_session, gw.outbound_port, steps) == {}
    audit = (tmp_path / "logs" / "audit.jsonl").read_text()
    assert f'"auth_user": "{COUNCILLOR}"' in audit


async def test_wrong_password_gets_535_and_is_slowed(tmp_path: Path) -> None:
    _with_user(tmp_path)
    config = build_config(tmp_path, {"outbound": {"trusted_networks": []}})
    async with running_gateway(config) as gw:
        def steps(c: smtplib.SMTP) -> list[int]:
            c.ehlo("laptop")
            codes = []
            for _ in range(2):
                try:
                    c.login(COUNCILLOR, "wrong password")
                except smtplib.SMTPAuthenticationError as e:
                    codes.append(e.smtp_code)
                    assert e.smtp_error.startswith(b"5.7.8")
            return codes
        codes = await in_thread(smtp_session, gw.outbound_port, steps)
        assert codes == [535, 535]
        # The failures are counted per client address: that is what slows the next try down.
        assert gw.logins.failures_from("127.0.0.1") >= 2


async def test_auth_is_offered_only_after_starttls(tmp_path: Path,
                                                   certificate: tuple[Path, Path]) -> None:
    _with_user(tmp_path)
    cert, key = certificate
    config = build_config(tmp_path, {
        "outbound": {"trusted_networks": [], "loopback_auth_without_tls": False},
        "tls": {"cert_file": str(cert), "key_file": str(key)},
    })
    async with running_gateway(config) as gw:
        def steps(c: smtplib.SMTP) -> tuple[bool, tuple[int, bytes], bool, int]:
            c.ehlo("laptop")
            before = c.has_extn("auth")
            refused = c.docmd("AUTH", "PLAIN AGNsbHIAeA==")
            ctx = ssl.create_default_context(cafile=str(cert))
            ctx.check_hostname = False
            c.starttls(context=ctx)
            c.ehlo("laptop")
            after = c.has_extn("auth")
            code, _ = c.login(COUNCILLOR, PASSWORD)
            return before, refused, after, code
        before, refused, after, code = await in_thread(smtp_session, gw.outbound_port, steps)
    assert before is False
    assert refused[0] == 538 and refused[1].startswith(b"5.7.11")
    assert after is True and code == 235


async def test_swaks_sends_with_starttls_and_auth(tmp_path: Path,
                                                  certificate: tuple[Path, Path]) -> None:
    """A real third-party client: swaks negotiates STARTTLS, logs in, sends."""
    _with_user(tmp_path)
    cert, key = certificate
    config = build_config(tmp_path, {
        "outbound": {"trusted_networks": [], "loopback_auth_without_tls": False},
        "tls": {"cert_file": str(cert), "key_file": str(key)},
    })
    async with running_gateway(config) as gw:
        proc = await asyncio.create_subprocess_exec(
            "swaks", "--server", f"127.0.0.1:{gw.outbound_port}", "--tls",
            "--auth", "PLAIN", "--auth-user", COUNCILLOR, "--auth-password", PASSWORD,
            "--from", COUNCILLOR, "--to", "resident@example.org",
            "--header", "Subject: Parish newsletter", "--body", "Hello from the council",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await proc.communicate()
    transcript = out.decode()
    assert proc.returncode == 0, transcript
    assert "<-  220 2.0.0 Ready to start TLS" in transcript
    assert "235 2.7.0 Authentication successful" in transcript
    files = list((tmp_path / "outbox" / "new").iterdir())
    assert len(files) == 1
    stored = files[0].read_bytes()
    assert b"Subject: Parish newsletter" in stored
    assert b"with ESMTPSA id" in stored  # the Received header records TLS + AUTH


async def test_connection_limit_answers_421(tmp_path: Path) -> None:
    config = build_config(tmp_path, {"gateway": {"max_connections": 1}})
    async with running_gateway(config) as gw:
        r1, w1 = await asyncio.open_connection("127.0.0.1", gw.inbound_port)
        assert (await r1.readline()).startswith(b"220 ")
        r2, w2 = await asyncio.open_connection("127.0.0.1", gw.inbound_port)
        line = await r2.readline()
        assert line.startswith(b"421 4.7.0")
        w1.close()
        w2.close()


async def test_idle_client_is_told_421_and_disconnected(tmp_path: Path) -> None:
    config = build_config(tmp_path, {"gateway": {"command_timeout": 1}})
    async with running_gateway(config) as gw:
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.inbound_port)
        assert (await reader.readline()).startswith(b"220 ")
        # Say nothing: the gateway gives up on us, politely, then closes.
        async with asyncio.timeout(10):
            line = await reader.readline()
            rest = await reader.read()
        writer.close()
    assert line.startswith(b"421 4.4.2")
    assert rest == b""
