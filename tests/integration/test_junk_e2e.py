"""Junk from unknown senders, end to end through the real inbound listener.

Stanion "Email" (junk from unknown sources; attachments only from trusted sources; list-serve mail,
chain letters, advertising) and Kirkham rule 15 (spam and phishing). DNS answers come from a real
DNS server on loopback; delivery goes to a real SMTP sink.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from gateway.quarantine.store import QuarantineStore
from tests.conftest import build_config, running_gateway
from tests.helpers import in_thread, send
from tests.junkkit import CLERK, overrides, publish_known_domain, talk
from tests.mailmaker import dkim_sign, dkim_txt, make_mail


def unfold(data: bytes) -> bytes:
    return re.sub(rb"\r\n[ \t]+", b" ", data)


PDF = ("minutes.pdf", "application/pdf", b"%PDF-1.4\n%fake but harmless\n")


def held(tmp_path: Path):
    return QuarantineStore(tmp_path / "quarantine").list()


async def test_residents_plain_first_message_is_delivered(tmp_path, dns_server, smtp_sink):
    config = build_config(tmp_path, overrides(tmp_path, dns_server.address, smtp_sink.url))
    async with running_gateway(config) as gw:
        code, text = await talk(gw.inbound_port, "pat@resident.example", [CLERK], make_mail())
    assert code == 250
    [msg] = smtp_sink.messages
    assert msg.rcpt_tos == [CLERK]
    assert (b"Authentication-Results: gw.stanion-pc.gov.uk; spf=none "
            b"smtp.mailfrom=resident.example") in unfold(msg.data)
    assert held(tmp_path) == []
    # the resolver asked only our loopback server, and about the sender's domain
    assert ("resident.example.", "TXT") in dns_server.queries


# Each junk signal alone quarantines mail from an unknown sender.
SIGNALS = [
    ("spf-fail", "pat@spf.example", {"TXT spf.example": "v=spf1 ip4:192.0.2.1 -all"}, {},
     "is not one that spf.example allows to send its mail"),
    ("dmarc-fail", "bounce@bulk-sender.example",
     {"TXT _dmarc.bank.example": "v=DMARC1; p=reject"}, {"from_": "Bank <alerts@bank.example>"},
     "bank.example asks receivers to reject mail that cannot be shown to come from it"),
    ("attachment", "pat@resident.example", {}, {"attachments": (PDF,)},
     "Has 1 attachment (minutes.pdf) from a sender the council does not know"),
    ("display-name", "boss@gmail.com", {}, {"from_": '"Chairman" <boss@gmail.com>'},
     'the name says "Chairman" but the address is a free-mail one (boss@gmail.com)'),
    ("known-name", "jane.smith@gmail.com", {}, {"from_": "Jane Smith <jane.smith@gmail.com>"},
     '"Jane Smith" is the name of a known sender (jane@nalc.example)'),
    ("lookalike", "office@stanion-pc.gov.co", {},
     {"from_": "Office <office@stanion-pc.gov.co>"},
     "the sender's domain stanion-pc.gov.co looks like the council's own stanion-pc.gov.uk"),
    ("reply-to", "sales@company.example", {},
     {"from_": "sales@company.example", "headers": (("Reply-To", "ceo.private@gmail.com"),)},
     "Replies would go to a free-mail address (ceo.private@gmail.com)"),
    ("bulk", "news@garden.example", {},
     {"from_": "news@garden.example", "headers": (("List-Id", "Offers <offers.garden.example>"),)},
     "Mailing-list or bulk mail from the mailing list offers.garden.example"),
    ("link", "pat@resident.example", {},
     {"html": '<p><a href="http://evil.example/login">https://www.barclays.co.uk</a></p>'},
     'a link shows "https://www.barclays.co.uk" but leads to evil.example'),
    ("chain-letter", "pat@resident.example", {},
     {"body": "Forward this to ten people or bad luck will follow.\n"},
     'Reads like a chain letter: "forward this to ten", "bad luck will"'),
    ("advertising", "deals@shop.example", {},
     {"from_": "deals@shop.example", "body": "Limited time offer! Act now for the best price.\n"},
     'Reads like unsolicited advertising: "limited time offer", "act now", "best price"'),
]


@pytest.mark.parametrize("name,mail_from,records,mail,reason", SIGNALS,
                         ids=[s[0] for s in SIGNALS])
async def test_each_junk_signal_alone_quarantines(tmp_path, dns_server, smtp_sink, name,
                                                  mail_from, records, mail, reason):
    for key, value in records.items():
        rtype, _, domain = key.partition(" ")
        dns_server.add(domain, rtype, value)
    mail = {"from_": mail_from, **mail}
    config = build_config(tmp_path, overrides(tmp_path, dns_server.address, smtp_sink.url))
    async with running_gateway(config) as gw:
        code, _ = await talk(gw.inbound_port, mail_from, [CLERK], make_mail(**mail))
    assert code == 250  # held safely: the sender's server must not retry or bounce
    assert smtp_sink.messages == []
    [h] = held(tmp_path)
    assert any(reason in r for r in h.reasons), h.reasons
    assert h.rcpt_tos == (CLERK,) and h.mail_from == mail_from
    audit = [json.loads(x) for x in (tmp_path / "logs" / "audit.jsonl").read_text().splitlines()]
    assert audit[-1]["verdict"] == "hold"
    assert any(reason in r for r in audit[-1]["reasons"])


async def test_known_sender_with_attachment_is_delivered(tmp_path, dns_server, smtp_sink):
    publish_known_domain(dns_server)
    config = build_config(tmp_path, overrides(tmp_path, dns_server.address, smtp_sink.url))
    data = make_mail(from_="Jane Smith <jane@nalc.example>", attachments=(PDF,))
    async with running_gateway(config) as gw:
        code, _ = await talk(gw.inbound_port, "jane@nalc.example", [CLERK], data)
    assert code == 250
    [msg] = smtp_sink.messages
    assert b"spf=pass smtp.mailfrom=nalc.example" in unfold(msg.data)
    assert b"dmarc=pass header.from=nalc.example" in unfold(msg.data)
    assert held(tmp_path) == []


async def test_known_domain_signed_with_dkim_via_other_envelope_is_delivered(
        tmp_path, dns_server, smtp_sink):
    dns_server.add("sel._domainkey.suppliers.example", "TXT", dkim_txt())
    dns_server.add("_dmarc.suppliers.example", "TXT", "v=DMARC1; p=quarantine")
    config = build_config(tmp_path, overrides(tmp_path, dns_server.address, smtp_sink.url,
                                              senders={"known": ["@suppliers.example"]}))
    data = dkim_sign(make_mail(from_="invoices@suppliers.example", attachments=(PDF,)),
                     "suppliers.example")
    async with running_gateway(config) as gw:
        code, _ = await talk(gw.inbound_port, "bounces@mailer.example", [CLERK], data)
    assert code == 250
    [msg] = smtp_sink.messages
    assert b"dkim=pass header.d=suppliers.example header.s=sel" in unfold(msg.data)


async def test_forged_known_sender_is_quarantined(tmp_path, dns_server, smtp_sink):
    # nalc.example only sends from 127.0.0.1; this claim comes through a server it does not allow
    dns_server.add("nalc.example", "TXT", "v=spf1 ip4:192.0.2.10 -all")
    dns_server.add("_dmarc.nalc.example", "TXT", "v=DMARC1; p=reject")
    config = build_config(tmp_path, overrides(tmp_path, dns_server.address, smtp_sink.url))
    data = make_mail(from_="Jane Smith <jane@nalc.example>", attachments=(PDF,))
    async with running_gateway(config) as gw:
        code, _ = await talk(gw.inbound_port, "jane@nalc.example", [CLERK], data)
    assert code == 250
    assert smtp_sink.messages == []
    [h] = held(tmp_path)
    assert any(r.startswith("Claims to come from a known sender (jane@nalc.example), but nothing "
                            "shows that it really does") for r in h.reasons)
    # The held copy (what a release delivers) carries the authentication results.
    stored = unfold(QuarantineStore(tmp_path / "quarantine").read(h.id))
    assert b"Authentication-Results: gw.stanion-pc.gov.uk; spf=fail" in stored


async def test_forged_results_claiming_our_name_are_removed(tmp_path, dns_server, smtp_sink):
    publish_known_domain(dns_server)
    config = build_config(tmp_path, overrides(tmp_path, dns_server.address, smtp_sink.url))
    forged = (b"Authentication-Results: gw.stanion-pc.gov.uk; spf=pass smtp.mailfrom=nalc.example;"
              b"\r\n dmarc=pass header.from=nalc.example\r\n"
              b"Authentication-Results: mx.elsewhere.example; spf=pass\r\n")
    data = forged + make_mail(from_="pat@resident.example")
    async with running_gateway(config) as gw:
        code, _ = await talk(gw.inbound_port, "pat@resident.example", [CLERK], data)
    assert code == 250
    [msg] = smtp_sink.messages
    assert msg.data.count(b"gw.stanion-pc.gov.uk;") == 1
    assert b"gw.stanion-pc.gov.uk; spf=none" in unfold(msg.data)
    assert b"Authentication-Results: mx.elsewhere.example; spf=pass" in unfold(msg.data)


async def test_dns_that_never_answers_means_unknown_not_failure(tmp_path, silent_dns,
                                                                 smtp_sink):
    config = build_config(tmp_path, overrides(tmp_path, silent_dns.address, smtp_sink.url,
                                              dns={"timeout": 0.3}))
    async with running_gateway(config) as gw:
        code, _ = await talk(gw.inbound_port, "pat@resident.example", [CLERK], make_mail())
        assert code == 250
        # a known sender cannot be shown genuine while DNS is down: their attachment is held
        code2, _ = await talk(gw.inbound_port, "jane@nalc.example", [CLERK],
                              make_mail(from_="jane@nalc.example", attachments=(PDF,)))
    assert code2 == 250
    [msg] = smtp_sink.messages
    assert b"spf=temperror" in unfold(msg.data) and b"dmarc=temperror" in unfold(msg.data)
    [h] = held(tmp_path)
    assert h.mail_from == "jane@nalc.example"
    assert [r for r in h.reasons if "attachment" in r]
    assert not [r for r in h.reasons if "genuine" in r]  # not called forged: DNS was down


async def test_quarantine_write_failure_answers_451(tmp_path, dns_server, smtp_sink):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a regular file where the quarantine folder should be")
    config = build_config(tmp_path, overrides(tmp_path, dns_server.address, smtp_sink.url,
                                              quarantine={"path": str(blocker / "quarantine")}))
    async with running_gateway(config) as gw:
        code, text = await talk(gw.inbound_port, "pat@resident.example", [CLERK],
                                make_mail(attachments=(PDF,)))
    assert code == 451
    assert text.startswith("4.3.0 ")
    assert smtp_sink.messages == []


async def test_blocked_sender_is_always_quarantined(tmp_path, dns_server, smtp_sink):
    publish_known_domain(dns_server)
    (tmp_path / "blocked-senders.txt").write_text("jane@nalc.example\n")
    config = build_config(tmp_path, overrides(tmp_path, dns_server.address, smtp_sink.url))
    async with running_gateway(config) as gw:
        code, _ = await talk(gw.inbound_port, "jane@nalc.example", [CLERK],
                             make_mail(from_="jane@nalc.example"))
    assert code == 250
    assert smtp_sink.messages == []
    [h] = held(tmp_path)
    assert h.reasons == ("The clerk has blocked this sender (jane@nalc.example).",)


async def test_action_reject_refuses_with_554(tmp_path, dns_server, smtp_sink):
    config = build_config(tmp_path, overrides(tmp_path, dns_server.address, smtp_sink.url,
                                              junk={"action": "reject"}))
    async with running_gateway(config) as gw:
        code, text = await talk(gw.inbound_port, "pat@resident.example", [CLERK],
                                make_mail(attachments=(PDF,)))
    assert code == 554
    assert text.startswith("5.7.1 This message looks like junk and was refused: Has 1 attachment")
    assert held(tmp_path) == [] and smtp_sink.messages == []


async def test_action_tag_delivers_with_subject_prefix(tmp_path, dns_server, smtp_sink):
    config = build_config(tmp_path, overrides(tmp_path, dns_server.address, smtp_sink.url,
                                              junk={"action": "tag"}))
    async with running_gateway(config) as gw:
        code, _ = await talk(gw.inbound_port, "pat@resident.example", [CLERK],
                             make_mail(attachments=(PDF,)))
    assert code == 250
    [msg] = smtp_sink.messages
    assert b"Subject: [Possible junk] Pothole on Church Lane" in unfold(msg.data)
    assert b"X-Council-Junk: yes; score=5; attachment-unknown-sender" in unfold(msg.data)


async def test_threshold_adds_up_weaker_signals(tmp_path, dns_server, smtp_sink):
    # one advertising phrase (2.5) is delivered; at threshold 2 it is held
    mail = make_mail(from_="deals@shop.example", body="A limited time offer on hedges.\n")
    config = build_config(tmp_path, overrides(tmp_path, dns_server.address, smtp_sink.url))
    async with running_gateway(config) as gw:
        assert (await talk(gw.inbound_port, "deals@shop.example", [CLERK], mail))[0] == 250
    assert len(smtp_sink.messages) == 1 and held(tmp_path) == []
    config = build_config(tmp_path, overrides(tmp_path, dns_server.address, smtp_sink.url,
                                              junk={"threshold": 2.0}))
    async with running_gateway(config) as gw:
        assert (await talk(gw.inbound_port, "deals@shop.example", [CLERK], mail))[0] == 250
    assert len(smtp_sink.messages) == 1 and len(held(tmp_path)) == 1


async def test_learned_recipient_is_known_after_outbound_mail(tmp_path, dns_server, smtp_sink):
    dns_server.add("district.example", "TXT", "v=spf1 ip4:127.0.0.1 -all")
    config = build_config(tmp_path, overrides(
        tmp_path, dns_server.address, smtp_sink.url,
        outbound={"deliver_to": f"maildir:{tmp_path / 'outbox'}"}))
    reply = make_mail(from_="planning@district.example", subject="Re: hedges",
                      attachments=(("plan.pdf", "application/pdf", b"%PDF-1.4"),))
    async with running_gateway(config) as gw:
        # before: an unknown sender's attachment is held
        await talk(gw.inbound_port, "planning@district.example", [CLERK], reply)
        assert len(held(tmp_path)) == 1
        out = make_mail(from_=CLERK, to="planning@district.example", subject="Hedges")
        refused = await in_thread(send, gw.outbound_port, CLERK, ["planning@district.example"], out)
        assert refused == {}
        # the server learned the recipient once the outbound next hop said 250
        assert "planning@district.example" in (tmp_path / "learned-senders.txt").read_text()
        code, _ = await talk(gw.inbound_port, "planning@district.example", [CLERK], reply)
    assert code == 250
    assert len(held(tmp_path)) == 1
    [delivered] = smtp_sink.messages
    assert b"Subject: Re: hedges" in delivered.data
    assert "planning@district.example" in (tmp_path / "learned-senders.txt").read_text()
