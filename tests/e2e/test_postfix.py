"""End to end with a real Postfix on loopback, on both sides of the gateway.

As the next hop: Postfix is the council's mailbox server behind the inbound side; mail must land
in its Maildir carrying the gateway's Received and trace headers (Stanion "Monitoring": the
council can see what passed through), its per-recipient refusals must reach the sender as its
own, and when it is down nothing is lost: the sender is told to retry (4.4.1) and the retry is
delivered once it is back.
As the client: Postfix relays councillors' outgoing mail to the gateway's outbound side.
"""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path

import pytest

from gateway.config import Config
from tests.conftest import build_config, running_gateway
from tests.helpers import in_thread, make_message, send
from tests.postfix import PostfixInstance, free_port, poll

CLERK = "clerk@stanion-pc.gov.uk"
COUNCILLOR = "councillor@stanion-pc.gov.uk"


@pytest.fixture(scope="module")
def postfix() -> Iterator[PostfixInstance]:
    # Postfix relays non-council mail to the gateway's outbound side, so that port is chosen
    # before the gateway exists and the client test listens on it.
    pf = PostfixInstance(mailboxes=["clerk", "councillor"], relay_port=free_port())
    try:
        pf.start()
        yield pf
    finally:
        try:
            pf.stop()
        finally:
            pf.remove()


def _inbound_config(tmp_path: Path, pf: PostfixInstance) -> Config:
    return build_config(tmp_path, {"inbound": {"deliver_to": f"smtp://127.0.0.1:{pf.port}"}})


async def _wait_for_subject(pf: PostfixInstance, mailbox: str, subject: str) -> bytes:
    return await in_thread(pf.wait_for_subject, mailbox, subject)


async def test_inbound_mail_lands_in_postfix_maildir_with_gateway_headers(
        tmp_path: Path, postfix: PostfixInstance) -> None:
    data = make_message(subject="Bus shelter repairs")
    async with running_gateway(_inbound_config(tmp_path, postfix)) as gw:
        refused = await in_thread(send, gw.inbound_port, "resident@example.org", [CLERK], data)
        stored = await _wait_for_subject(postfix, "clerk", "Bus shelter repairs")
    assert refused == {}
    msg = message_from_bytes(stored, policy=default_policy)
    received = msg.get_all("received") or []
    # Postfix's own Received names the gateway as the host that handed the message over, and
    # the gateway's Received below it names the original client.
    assert "from gw.stanion-pc.gov.uk" in received[0] and "(Postfix)" in received[0]
    assert any("by gw.stanion-pc.gov.uk (council-gateway)" in r and "client.example.org" in r
               for r in received[1:])
    assert msg["x-council-gateway"].startswith("gw.stanion-pc.gov.uk inbound id=")
    assert msg["return-path"] == "<resident@example.org>"
    assert msg.get_content().strip() == "Please fix it."


async def test_unknown_recipient_gets_postfixs_own_550_while_known_one_is_delivered(
        tmp_path: Path, postfix: PostfixInstance) -> None:
    data = make_message(subject="Allotment waiting list")
    async with running_gateway(_inbound_config(tmp_path, postfix)) as gw:
        refused = await in_thread(send, gw.inbound_port, "resident@example.org",
                                  ["nobody-here@stanion-pc.gov.uk", CLERK], data)
        await _wait_for_subject(postfix, "clerk", "Allotment waiting list")
    code, text = refused["nobody-here@stanion-pc.gov.uk"]
    assert code == 550
    assert text.startswith(b"5.1.1 <nobody-here@stanion-pc.gov.uk>: Recipient address rejected")
    assert b"User unknown" in text
    assert list(refused) == ["nobody-here@stanion-pc.gov.uk"]


async def test_only_unknown_recipient_means_no_message_is_taken(
        tmp_path: Path, postfix: PostfixInstance) -> None:
    data = make_message(subject="Nobody reads this")
    async with running_gateway(_inbound_config(tmp_path, postfix)) as gw:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as info:
            await in_thread(send, gw.inbound_port, "resident@example.org",
                            ["nobody-here@stanion-pc.gov.uk"], data)
    code, text = info.value.recipients["nobody-here@stanion-pc.gov.uk"]
    assert (code, text[:5]) == (550, b"5.1.1")


async def test_postfix_down_means_451_and_the_retry_is_delivered_once_it_is_back(
        tmp_path: Path, postfix: PostfixInstance) -> None:
    data = make_message(subject="Planning application 26/0042")
    config = _inbound_config(tmp_path, postfix)
    await in_thread(postfix.stop)
    try:
        async with running_gateway(config) as gw:
            with pytest.raises(smtplib.SMTPRecipientsRefused) as info:
                await in_thread(send, gw.inbound_port, "resident@example.org", [CLERK], data)
            code, text = info.value.recipients[CLERK]
            assert code == 451
            assert text.startswith(b"4.4.1 ")
            await in_thread(postfix.start)
            # The sending server retries the same message later, as a 4xx tells it to.
            refused = await in_thread(send, gw.inbound_port, "resident@example.org", [CLERK],
                                      data)
            stored = await _wait_for_subject(postfix, "clerk", "Planning application 26/0042")
    finally:
        if not postfix.running():
            await in_thread(postfix.start)
    assert refused == {}
    assert b"X-Council-Gateway: gw.stanion-pc.gov.uk inbound" in stored


async def test_postfix_relays_councillors_mail_through_the_outbound_side(
        tmp_path: Path, postfix: PostfixInstance) -> None:
    config = build_config(tmp_path, {"outbound": {"listen": f"127.0.0.1:{postfix.relay_port}"}})
    data = make_message(sender=COUNCILLOR, to="resident@example.org",
                        subject="Re: Pothole on Main Street", body="It is on the list.\n")
    outbox = tmp_path / "outbox" / "new"
    async with running_gateway(config) as gw:
        assert gw.outbound_port == postfix.relay_port
        await in_thread(postfix.sendmail, COUNCILLOR, ["resident@example.org"], data)

        files = await in_thread(
            poll, lambda: outbox.is_dir() and sorted(outbox.iterdir()), 20,
            lambda: f"nothing reached the outbox within 20s\n--- maillog ---\n{postfix.log()}")
    assert len(files) == 1
    stored = files[0].read_bytes()
    msg = message_from_bytes(stored, policy=default_policy)
    assert msg["return-path"] == f"<{COUNCILLOR}>"
    assert msg["delivered-to"] == "resident@example.org"
    assert msg["x-council-gateway"].startswith("gw.stanion-pc.gov.uk outbound id=")
    received = msg.get_all("received") or []
    assert "by gw.stanion-pc.gov.uk (council-gateway)" in received[0]
    assert "from mail.stanion-pc.gov.uk" in received[0]
    assert any("by mail.stanion-pc.gov.uk (Postfix" in r for r in received[1:])
    assert msg.get_content().strip() == "It is on the list."
