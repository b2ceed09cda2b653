"""The optional SpamAssassin opinion, from a real spamd started on loopback by the test.

Kirkham rule 15 (spam). The rules are the test's own (tests/spamdkit.py): one body rule worth 10
points against spamd's limit of 5.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gateway.adapters.spamd import parse_spamd_reply, parse_tell_reply, spamd_check, spamd_tell
from gateway.quarantine.store import QuarantineStore
from tests.conftest import build_config, running_gateway
from tests.junkkit import CLERK, overrides, talk
from tests.mailmaker import make_mail
from tests.spamdkit import SPAM_PHRASE, free_port, running_spamd


@pytest.fixture(scope="module")
def spamd() -> Iterator[tuple[str, int]]:
    with running_spamd() as address:
        yield address


@pytest.mark.parametrize("reply,expected", [
    (b"SPAMD/1.1 0 EX_OK\r\nSpam: True ; 10.0 / 5.0\r\n\r\n", (True, 10.0, 5.0, ())),
    (b"SPAMD/1.1 0 EX_OK\r\nSpam: False ; -0.1 / 5.0\r\n\r\n", (False, -0.1, 5.0, ())),
    (b"SPAMD/1.1 0 EX_OK\r\nContent-length: 26\r\nSpam: True ; 14.0 / 5.0\r\n\r\n"
     b"BAYES_99,COUNCIL_TEST_SPAM", (True, 14.0, 5.0, ("BAYES_99", "COUNCIL_TEST_SPAM"))),
    (b"SPAMD/1.0 76 Bad header line\r\nSpam: True ; 10.0 / 5.0\r\n\r\n", None),
    (b"SPAMD/1.0 76 Bad header line\r\n", None),
    (b"", None),
])
def test_parse_spamd_reply(reply, expected):
    got = parse_spamd_reply(reply)
    assert (None if got is None else (got.is_spam, got.score, got.required, got.rules)) == expected


@pytest.mark.parametrize("reply,expected", [
    (b"SPAMD/1.1 0 EX_OK\r\nDidSet: local\r\n\r\n\r\n", None),
    (b"SPAMD/1.1 0 EX_OK\r\n\r\n\r\n", "spamd did not learn it (its Bayes filter is off, "
                                       "or it knew this message already)"),
    (b"SPAMD/1.0 69 Service Unavailable: TELL commands are not enabled, set the --allow-tell "
     b"switch.\r\n", "spamd refused: Service Unavailable: TELL commands are not enabled, set the "
                      "--allow-tell switch."),
    (b"SPAMD/1.0 76 \r\n", "spamd refused: error 76"),
    (b"HTTP/1.1 400 Bad Request\r\n", "spamd sent a reply we could not read: "
                                       "'HTTP/1.1 400 Bad Request\\r\\n'"),
])
def test_parse_tell_reply(reply, expected):
    assert parse_tell_reply(reply) == expected


async def test_real_spamd_scores(spamd):
    spam = await spamd_check(spamd, make_mail(body=SPAM_PHRASE + "\n"), deadline=20)
    ham = await spamd_check(spamd, make_mail(), deadline=20)
    assert spam is not None and spam.is_spam and spam.score >= 10
    assert spam.rules == ("COUNCIL_TEST_SPAM",)
    assert ham is not None and not ham.is_spam and ham.rules == ()


async def test_spamd_without_allow_tell_refuses_to_learn(spamd):
    error = await spamd_tell(spamd, make_mail(body=SPAM_PHRASE + "\n"), "spam", deadline=20)
    assert error is not None and "--allow-tell" in error


async def test_spamd_refusal_read_even_when_it_stops_reading_a_large_message(spamd):
    # spamd answers a TELL it will not do before reading the body and closes: the write of the
    # rest fails, the refusal is still the answer.
    error = await spamd_tell(spamd, make_mail(body=("y" * 76 + "\n") * 60_000), "spam",
                             deadline=20)
    assert error is not None and "--allow-tell" in error


async def test_spamd_down_gives_no_opinion():
    assert await spamd_check(("127.0.0.1", free_port()), make_mail(), deadline=2) is None


async def test_spamd_opinion_holds_mail_end_to_end(tmp_path, dns_server, smtp_sink, spamd):
    config = build_config(tmp_path, overrides(
        tmp_path, dns_server.address, smtp_sink.url,
        junk={"spamd": f"{spamd[0]}:{spamd[1]}", "spamd_timeout": 20}))
    async with running_gateway(config) as gw:
        assert (await talk(gw.inbound_port, "pat@resident.example", [CLERK],
                           make_mail(body=f"Hello {SPAM_PHRASE}\n")))[0] == 250
        assert (await talk(gw.inbound_port, "pat@resident.example", [CLERK],
                           make_mail()))[0] == 250
    [h] = QuarantineStore(tmp_path / "quarantine").list()
    assert h.reasons[1:] == ("The spam checker (SpamAssassin) scores it 10 points; it counts 5 "
                             "or more as spam.",)
    assert len(smtp_sink.messages) == 1
