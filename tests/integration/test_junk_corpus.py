"""Junk decisions over a whole corpus of realistic council mail: no good message held, at least
95 % of junk held.

Stanion "Email" (junk from unknown sources; attachments only from trusted sources) and Kirkham
rule 15 (spam and phishing). The corpus (tests/junkcorpus) is generated from our own tables with
a fixed seed and judged as one fixed list; DNS answers (SPF, DKIM keys, DMARC) come from the real
DNS server on loopback, the known senders are learned from the councillors' outbound mail as the
gateway learns them, and every message goes through the real inbound checks.
"""

from __future__ import annotations

from collections import Counter

import pytest

from gateway.context import parse_message
from tests.conftest import build_config
from tests.junkcorpus import config_overrides, corpus, judge, publish, summary

GOOD_KINDS = {
    "resident on free mail", "resident on UK broadband", "resident with their own domain",
    "neighbouring, district or county council", "police", "NHS", "school",
    "county association and NALC", "HMRC and GOV.UK", "supplier quote",
    "newsletter the council reads", "reply to a councillor's mail",
}
JUNK_KINDS = {
    "look-alike of the council's domain", "look-alike of a correspondent's domain",
    "display name of the clerk or chair", "link text that disagrees with its target",
    "payment and gift-card fraud", "chain letter", "advert", "forged known sender",
}


@pytest.fixture(scope="module")
def mails():
    return corpus()


def test_the_corpus_covers_what_a_parish_council_receives(mails):
    good = Counter(m.category for m in mails if m.good)
    junk = Counter(m.category for m in mails if not m.good)
    assert sum(good.values()) >= 300 and sum(junk.values()) >= 150
    assert set(good) == GOOD_KINDS and set(junk) == JUNK_KINDS
    def fixed(ms):  # all but the Date, Message-ID, MIME boundaries and signature time
        out = []
        for m in ms:
            msg = parse_message(m.data)
            body = msg.get_body(("plain",))
            out.append((m.category, m.mail_from, m.client_ip, m.rcpt, str(msg["subject"]),
                        body.get_content() if body else ""))
        return out
    assert fixed(corpus()) == fixed(mails)  # the same list on every run


async def test_no_good_message_held_and_nearly_all_junk_held(mails, tmp_path, dns_server):
    publish(dns_server)
    config = build_config(tmp_path, config_overrides(tmp_path, dns_server.address))
    judged = await judge(mails, config)
    table = summary(judged)
    false_holds = [j for j in judged if j.false_hold]
    assert false_holds == [], table + "\n" + "\n".join(
        f"{j.mail.category}: {j.mail.mail_from} {j.codes}" for j in false_holds)
    junk = [j for j in judged if not j.mail.good]
    assert sum(j.held for j in junk) >= 0.95 * len(junk), table
    # Good mail held by the attachment rule is held for that, and only for mail that has one.
    by_rule = [j for j in judged if j.mail.good and j.held]
    assert by_rule and all("attachment-unknown-sender" in j.codes for j in by_rule)
    assert all(j.mail.attachment_from_unknown for j in by_rule)
    # Replies carrying a file are let through only because the book learned their senders
    # from the councillors' outbound mail; without it they would be held like any unknown's.
    replies = [j for j in judged if j.mail.category == "reply to a councillor's mail"]
    assert any(b"signed-form.pdf" in j.mail.data for j in replies)
    assert not any(j.held for j in replies)
