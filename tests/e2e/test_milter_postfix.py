"""The milter inside a real Postfix: ``smtpd_milters`` points at the gateway, and Postfix does
the SMTP and the delivery.

One Postfix stays up for the module: the council's mail server (mailboxes of stanion-pc.gov.uk,
everything else relayed to a recording sink that stands for the Internet), with
``milter_default_action = tempfail``. Each test starts its own gateway and milter on the port
Postfix knows. Mail from 127.0.0.1 is the councillors' (outbound) when the config trusts
loopback, and mail from outside when it does not.

What is checked: the same verdicts as the proxy (a virus refused with the gateway's reply, junk
held in the gateway's quarantine and gone from Postfix's queue, relaying refused at RCPT), the
footer and a DKIM signature that verifies after Postfix has rebuilt the message from the
milter's edits, forged trust fields removed, a milter that is down tempfails rather than lets
mail through, a reload applies to the next message, and the audit record matches the proxy's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import smtplib
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import dkim
import pytest

from gateway.adapters.dkim_signing import (
    generate_key,
    txt_record,
    write_private_key,
    zone_line,
)
from gateway.assembly import load_config
from gateway.config import Config
from gateway.milter import server as milter_server
from gateway.milter.server import running_milter
from gateway.milter.settings import MilterConfig
from gateway.smtp.server import Gateway
from tests.conftest import SmtpSink, build_config, running_gateway, write_config
from tests.fixtures_clamd import ClamdInstance
from tests.helpers import in_thread, make_message, send
from tests.junkkit import overrides as junk_overrides
from tests.junkkit import publish_known_domain
from tests.mailmaker import make_mail
from tests.postfix import PostfixInstance, free_port, poll
from tests.samples import EICAR

ROOT = Path(__file__).resolve().parents[2]
COUNCIL = "stanion-pc.gov.uk"
CLERK = f"clerk@{COUNCIL}"
COUNCILLOR = f"councillor@{COUNCIL}"
RESIDENT = "resident@example.org"
OUTSIDE_ONLY = {"trusted_networks": ["192.0.2.0/24"]}  # loopback is not the office here
PDF = ("plans.pdf", "application/pdf", b"%PDF-1.4\n" + b"y" * 800)


@dataclass(frozen=True)
class Rig:
    postfix: PostfixInstance
    milter_port: int

    @property
    def internet_port(self) -> int:
        return self.postfix.relay_port


@pytest.fixture(scope="module")
def rig() -> Iterator[Rig]:
    milter_port = free_port()
    pf = PostfixInstance(mailboxes=["clerk", "councillor"], relay_port=free_port(), settings={
        "smtpd_milters": f"inet:127.0.0.1:{milter_port}",
        "milter_default_action": "tempfail",
        "milter_connect_timeout": "5s",
        # Each relayed message on its own connection, closed after it: nothing is open to the
        # sink when a test ends.
        "smtp_connection_cache_on_demand": "no",
    })
    try:
        pf.start()
        yield Rig(pf, milter_port)
    finally:
        try:
            pf.stop()
        finally:
            pf.remove()


@pytest.fixture
async def internet(rig: Rig) -> AsyncIterator[SmtpSink]:
    """Where Postfix relays mail for other domains."""
    sink = SmtpSink(port=rig.internet_port)
    await sink.start()
    yield sink
    assert await sink.settle() == 0
    await sink.stop()


def _overrides(rig: Rig, **sections: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"milter": {"listen": f"127.0.0.1:{rig.milter_port}"}}
    for name, values in sections.items():
        out[name] = {**out.get(name, {}), **values}
    return out


def _config(tmp_path: Path, rig: Rig, **sections: dict[str, Any]) -> Config:
    return build_config(tmp_path, _overrides(rig, **sections))


@contextlib.asynccontextmanager
async def _milter(config: Config) -> AsyncIterator[Gateway]:
    async with running_gateway(config) as gw, running_milter(gw, config.section(MilterConfig)):
        yield gw


def _audit(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "logs" / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _messages(tmp_path: Path) -> list[dict[str, Any]]:
    return [e for e in _audit(tmp_path) if e["event"] == "message"]


async def _send(port: int, mail_from: str, rcpts: list[str], data: bytes) -> Any:
    """What the client was told: the refused-recipients dict, or the error Postfix answered."""
    try:
        return await in_thread(send, port, mail_from, rcpts, data)
    except smtplib.SMTPResponseException as e:
        return e
    except smtplib.SMTPRecipientsRefused as e:
        return e


def _text(error: smtplib.SMTPResponseException) -> str:
    raw = error.smtp_error
    return raw.decode() if isinstance(raw, bytes) else raw


def _parsed(data: bytes) -> Any:
    return message_from_bytes(data, policy=default_policy)


def _crlf(data: bytes) -> bytes:
    return re.sub(rb"\r?\n", b"\r\n", data)


# ---------------------------------------------------------------------- inbound


async def test_clean_mail_from_outside_is_delivered_by_postfix_with_the_gateways_fields(
        tmp_path: Path, rig: Rig) -> None:
    data = make_message(subject="Bench on the green").replace(
        b"Subject:", b"Authentication-Results: gw.stanion-pc.gov.uk; spf=pass\r\n"
                     b"X-Council-Gateway: gw.stanion-pc.gov.uk inbound id=forged\r\nSubject:", 1)
    async with _milter(_config(tmp_path, rig, outbound=OUTSIDE_ONLY)):
        assert await _send(rig.postfix.port, RESIDENT, [CLERK], data) == {}
        stored = await in_thread(rig.postfix.wait_for_subject, "clerk", "Bench on the green")
    msg = _parsed(stored)
    # The forged fields were deleted through the milter; the gateway's own are there once.
    [mark] = msg.get_all("x-council-gateway")
    assert mark.startswith("gw.stanion-pc.gov.uk inbound id=") and "forged" not in mark
    results = [" ".join(v.split()) for v in msg.get_all("authentication-results") or []]
    assert "gw.stanion-pc.gov.uk; spf=pass" not in results
    assert "(Postfix)" in msg.get_all("received")[0]
    assert msg.get_content().strip() == "Please fix it."
    [event] = _messages(tmp_path)
    assert (event["direction"], event["verdict"], event["mail_from"]) == (
        "inbound", "deliver", RESIDENT)


async def test_a_virus_is_refused_with_the_gateways_reply_and_never_reaches_a_mailbox(
        tmp_path: Path, rig: Rig, clamd: ClamdInstance) -> None:
    config = _config(tmp_path, rig, outbound=OUTSIDE_ONLY,
                     inbound={"filters": ["trace", "antivirus", "attachments"]},
                     clamav={"address": clamd.address, "timeout": 5})
    data = make_message(subject="Invoice attached", body=EICAR.decode() + "\n")
    async with _milter(config):
        answer = await _send(rig.postfix.port, RESIDENT, [CLERK], data)
    assert isinstance(answer, smtplib.SMTPDataError)
    assert answer.smtp_code == 554
    assert _text(answer).startswith("5.7.1 ")
    assert "the message contains Eicar-Test-Signature" in _text(answer)
    assert all(b"Invoice attached" not in m for m in rig.postfix.messages("clerk"))
    [event] = _messages(tmp_path)
    assert event["verdict"] == "refuse"
    assert any(f["filter"] == "antivirus" for f in event["findings"])


async def test_relaying_through_the_milter_is_refused_at_rcpt(tmp_path: Path, rig: Rig) -> None:
    async with _milter(_config(tmp_path, rig, outbound=OUTSIDE_ONLY)):
        answer = await _send(rig.postfix.port, RESIDENT, ["someone@example.net"],
                             make_message(to="someone@example.net"))
    assert isinstance(answer, smtplib.SMTPRecipientsRefused)
    code, text = answer.recipients["someone@example.net"]
    assert code == 554 or code == 550
    assert text.decode().startswith("5.7.1 ")
    [event] = [e for e in _audit(tmp_path) if e["event"] == "refused"]
    assert (event["stage"], event["rcpt"], event["direction"]) == (
        "rcpt", "someone@example.net", "inbound")


async def test_junk_is_held_in_the_gateways_quarantine_and_discarded_from_postfix(
        tmp_path: Path, rig: Rig, dns_server: Any, internet: SmtpSink) -> None:
    publish_known_domain(dns_server)
    settings = junk_overrides(tmp_path, dns_server.address, internet.url,
                              **_overrides(rig, outbound=OUTSIDE_ONLY))
    path = write_config(tmp_path, settings)
    data = make_mail(from_="Sam <sam@unknown-sender.example>", to=CLERK,
                     subject="Cheap plans for you", attachments=(PDF,))
    async with _milter(load_config(path)):
        assert await _send(rig.postfix.port, "sam@unknown-sender.example", [CLERK], data) == {}
        poll(lambda: "milter-discard" in rig.postfix.log()
             and "Cheap plans" not in rig.postfix.log(), 20,
             lambda: "Postfix never discarded the message:\n" + rig.postfix.log())
    assert all(b"Cheap plans for you" not in m for m in rig.postfix.messages("clerk"))
    listed = await _cli(path, "quarantine", "list", "--json")
    [held] = json.loads(listed)
    assert held["subject"] == "Cheap plans for you"
    assert held["rcpt_tos"] == [CLERK]
    [event] = _messages(tmp_path)
    assert event["verdict"] == "hold"


async def _cli(config_path: Path, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", *args, "--config", str(config_path), cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode()


# ---------------------------------------------------------------------- outbound


def _signing(tmp_path: Path) -> tuple[dict[str, Any], dict[str, Any], str]:
    private, public = generate_key("rsa-sha256")
    write_private_key(tmp_path / "dkim.key", private)
    footer = {"text_file": str(ROOT / "config" / "footer.txt"),
              "html_file": str(ROOT / "config" / "footer.html")}
    return (footer, {"selector": "pf", "private_key_file": str(tmp_path / "dkim.key")},
            txt_record("rsa-sha256", public))


def _verifies(data: bytes, txt: str) -> bool:
    def dns(name: bytes, timeout: int = 5) -> bytes | None:
        return txt.encode() if name.decode().rstrip(".") == f"pf._domainkey.{COUNCIL}" else None
    return bool(dkim.verify(data, dnsfunc=dns))


def _verifies_with_mail_dkim(tmp_path: Path, data: bytes, txt: str) -> None:
    """Perl's Mail::DKIM, a second verifier, on the same bytes."""
    zone = tmp_path / "zone"
    zone.write_text(zone_line("pf", COUNCIL, txt) + "\n")
    message = tmp_path / "relayed.eml"
    message.write_bytes(data)
    perl = subprocess.run(["perl", str(ROOT / "tests" / "tools" / "dkim_verify.pl"),
                           str(message), str(zone)],
                          capture_output=True, text=True, check=True, timeout=60)
    assert perl.stdout.splitlines() == [f"pass {COUNCIL} pf rsa-sha256 pass", "overall pass"]


async def test_outgoing_mail_gets_the_footer_once_and_a_signature_that_verifies_after_postfix(
        tmp_path: Path, rig: Rig, internet: SmtpSink) -> None:
    footer, signing, txt = _signing(tmp_path)
    config = _config(tmp_path, rig, outbound={"filters": ["trace", "footer", "dkim"]},
                     footer=footer, dkim=signing)
    data = make_message(sender=COUNCILLOR, to=RESIDENT, subject="Parish newsletter",
                        body="The newsletter is out.\n" + "A longer line of text. " * 8 + "\n")
    async with _milter(config):
        assert await _send(rig.postfix.port, COUNCILLOR, [RESIDENT], data) == {}
        [arrived] = await internet.wait_for(1)
    out = _crlf(arrived.data)
    msg = _parsed(out)
    assert len(msg.get_all("dkim-signature")) == 1
    assert _verifies(out, txt), out.decode(errors="replace")
    _verifies_with_mail_dkim(tmp_path, out, txt)
    body = msg.get_body(("plain",)).get_content()
    assert body.count("Stanion Parish Council - privacy notice") == 1
    assert "The newsletter is out." in body
    [event] = _messages(tmp_path)
    assert (event["direction"], event["verdict"]) == ("outbound", "deliver")


async def test_a_reload_applies_to_the_next_message(tmp_path: Path, rig: Rig,
                                                    internet: SmtpSink) -> None:
    first, second = tmp_path / "first.txt", tmp_path / "second.txt"
    first.write_text("-- \nFirst footer wording.\n")
    second.write_text("-- \nSecond footer wording.\n")
    settings = _overrides(rig, outbound={"filters": ["trace", "footer"]},
                          footer={"text_file": str(first)})
    async with _milter(build_config(tmp_path, settings)) as gw:
        await _send(rig.postfix.port, COUNCILLOR, [RESIDENT],
                    make_message(sender=COUNCILLOR, to=RESIDENT, subject="One"))
        settings["footer"]["text_file"] = str(second)
        gw.reload(build_config(tmp_path, settings))
        await _send(rig.postfix.port, COUNCILLOR, [RESIDENT],
                    make_message(sender=COUNCILLOR, to=RESIDENT, subject="Two"))
        one, two = await internet.wait_for(2)
    assert b"First footer wording." in one.data and b"Second" not in one.data
    assert b"Second footer wording." in two.data and b"First" not in two.data


# ---------------------------------------------------------------------- failure and parity


async def test_with_the_milter_down_postfix_tells_the_client_to_try_again(
        tmp_path: Path, rig: Rig) -> None:
    answer = await _send(rig.postfix.port, RESIDENT, [CLERK],
                         make_message(subject="While the gateway is down"))
    if isinstance(answer, smtplib.SMTPRecipientsRefused):
        code = answer.recipients[CLERK][0]
    else:
        assert isinstance(answer, smtplib.SMTPResponseException), answer
        code = answer.smtp_code
    assert code == 451
    assert all(b"While the gateway is down" not in m for m in rig.postfix.messages("clerk"))


async def test_the_audit_record_is_the_proxys(tmp_path: Path, rig: Rig) -> None:
    data = make_message(subject="Same record either way")
    proxied, milter = tmp_path / "proxy", tmp_path / "milter"
    proxied.mkdir()
    milter.mkdir()
    async with running_gateway(build_config(proxied, {"outbound": OUTSIDE_ONLY})) as gw:
        assert await in_thread(send, gw.inbound_port, RESIDENT, [CLERK], data) == {}
    async with _milter(_config(milter, rig, outbound=OUTSIDE_ONLY)) as gw:
        assert await _send(rig.postfix.port, RESIDENT, [CLERK], data) == {}
        counted = gw.metrics.registry.get_sample_value(
            "gateway_messages_total", {"side": "inbound", "action": "deliver"})
    assert counted == 1  # and counted as the proxy counts
    [a] = _messages(proxied)
    [b] = _messages(milter)
    assert sorted(a) == sorted(b)
    for key in ("event", "direction", "mail_from", "rcpt_tos", "verdict", "subject",
                "auth_user"):
        assert a[key] == b[key], key
    assert [f["code"] for f in a["findings"]] == [f["code"] for f in b["findings"]]


async def test_slow_checks_keep_postfix_waiting_and_the_gateway_answers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A scanner that never answers: the milter tells Postfix it is still working, so Postfix
    (whose own milter timeout here is 1 second) waits for the gateway's 451, not its own."""
    monkeypatch.setattr(milter_server, "PROGRESS_EVERY", 0.2)

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(65536):
            pass
        writer.close()

    silent = await asyncio.start_server(swallow, "127.0.0.1", 0)
    milter_port = free_port()
    pf = PostfixInstance(mailboxes=["clerk"], relay_port=free_port(), settings={
        "smtpd_milters": f"inet:127.0.0.1:{milter_port}",
        "milter_default_action": "tempfail",
        "milter_content_timeout": "1s",
    })
    config = build_config(tmp_path, {
        "milter": {"listen": f"127.0.0.1:{milter_port}"}, "outbound": OUTSIDE_ONLY,
        "inbound": {"filters": ["trace", "antivirus"]},
        "clamav": {"address": f"127.0.0.1:{silent.sockets[0].getsockname()[1]}",
                   "timeout": 3}})
    try:
        await in_thread(pf.start)
        async with _milter(config):
            answer = await _send(pf.port, RESIDENT, [CLERK], make_message())
    finally:
        silent.close()
        await in_thread(pf.stop)
        pf.remove()
    assert isinstance(answer, smtplib.SMTPDataError), answer
    assert answer.smtp_code == 451
    assert "scanner" in _text(answer).lower()
