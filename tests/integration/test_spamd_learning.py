"""The clerk's decisions on held junk teach a real spamd's Bayes filter (started with
--allow-tell and a Bayes database of its own, tests/spamdkit.py): after a delete a message like
the deleted one scores higher, after a release lower; spamd's trouble never changes a resolution.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.adapters.spamd import spamd_check, spamd_tell
from gateway.assembly import assemble, load_config
from gateway.config import Config
from gateway.quarantine.resolve import resolve
from gateway.quarantine.store import HeldMessage, QuarantineStore
from tests.conftest import SmtpSink, build_config, running_gateway, write_config
from tests.helpers import cli
from tests.junkkit import CLERK, overrides, talk
from tests.mailmaker import make_mail
from tests.spamdkit import SPAM_PHRASE, free_port, running_spamd, seed_messages

ROOT = Path(__file__).resolve().parents[2]
RESIDENT = "pat@resident.example"
Address = tuple[str, int]


@pytest.fixture
async def spamd() -> AsyncIterator[Address]:
    """A fresh spamd and Bayes database for each test, taught the two seed messages."""
    with running_spamd(learning=True) as address:
        ham, spam = seed_messages()
        assert await spamd_tell(address, ham, "ham", deadline=20) is None
        assert await spamd_tell(address, spam, "spam", deadline=20) is None
        yield address


def offer() -> bytes:
    """Junk by spamd's rule alone; each call a new copy (new Message-ID and Date)."""
    return make_mail(subject="Your exclusive cruise upgrade",
                     body=f"Dear friend, {SPAM_PHRASE}: your luxury cruise cabin upgrade is "
                          "reserved, confirm the booking with your card details.\n")


def gateway_config(tmp_path: Path, dns: Any, sink: SmtpSink, spamd: Address,
                   **junk: Any) -> dict[str, Any]:
    return overrides(tmp_path, dns.address, sink.url,
                     junk={"spamd": f"{spamd[0]}:{spamd[1]}", "spamd_timeout": 20, **junk})


async def hold(config: Config, data: bytes) -> HeldMessage:
    async with running_gateway(config) as gw:
        assert (await talk(gw.inbound_port, RESIDENT, [CLERK], data))[0] == 250
    [held] = QuarantineStore(config.quarantine.path).list()
    assert {"junk", "spamassassin"} <= set(held.codes)
    return held


def audit(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "logs" / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


async def score(spamd: Address, data: bytes) -> tuple[float, tuple[str, ...]]:
    got = await spamd_check(spamd, data, deadline=20)
    assert got is not None
    return got.score, got.rules


async def test_a_delete_teaches_spam_and_a_repeat_scores_higher(
        tmp_path, dns_server, smtp_sink, spamd):
    path = write_config(tmp_path, gateway_config(tmp_path, dns_server, smtp_sink, spamd))
    config = load_config(path)
    before, before_rules = await score(spamd, offer())
    assert before == 10 and before_rules == ("COUNCIL_TEST_SPAM",)
    held = await hold(config, offer())

    rc, out, err = await cli(path, "quarantine", "delete", held.id)
    assert (rc, out.strip()) == (0, "Deleted."), err
    assert QuarantineStore(config.quarantine.path).list() == []
    [line] = [e for e in audit(tmp_path) if e["event"] == "quarantine-delete"]
    assert (line["ok"], line["learned"], line["learn_error"]) == (True, "spam", None)

    after, after_rules = await score(spamd, offer())
    assert after > before and "BAYES_99" in after_rules
    # And the gateway says so when the next one arrives: held again, on the higher score.
    async with running_gateway(config) as gw:
        assert (await talk(gw.inbound_port, RESIDENT, [CLERK], offer()))[0] == 250
    [again] = QuarantineStore(config.quarantine.path).list()
    assert f"scores it {after:g} points" in " ".join(again.reasons)


async def test_blocking_the_sender_teaches_spam_too(tmp_path, dns_server, smtp_sink, spamd):
    config = build_config(tmp_path, gateway_config(tmp_path, dns_server, smtp_sink, spamd))
    held = await hold(config, offer())
    result = await resolve(assemble(config), held.id, "block_sender", "clerk")
    assert result.ok, result.message
    line = audit(tmp_path)[-1]
    assert (line["sender"], line["sender_change"], line["learned"]) == (
        RESIDENT, "blocked", "spam")
    assert RESIDENT in (tmp_path / "blocked-senders.txt").read_text()
    assert "BAYES_99" in (await score(spamd, offer()))[1]


async def test_release_and_trust_teaches_ham_and_still_trusts(
        tmp_path, dns_server, smtp_sink, spamd):
    config = build_config(tmp_path, gateway_config(tmp_path, dns_server, smtp_sink, spamd))
    held = await hold(config, offer())
    result = await resolve(assemble(config), held.id, "release_and_trust", "clerk")
    assert result.message == (f"Released: delivered to {CLERK}. {RESIDENT} is now a known "
                              "sender."), result.message
    line = audit(tmp_path)[-1]
    assert (line["sender_change"], line["learned"], line["learn_error"]) == (
        "trusted", "ham", None)
    assert RESIDENT in (tmp_path / "known-senders.txt").read_text()
    assert "BAYES_00" in (await score(spamd, offer()))[1]


async def test_a_release_teaches_ham_and_a_repeat_is_delivered(
        tmp_path, dns_server, smtp_sink, spamd):
    config = build_config(tmp_path, gateway_config(tmp_path, dns_server, smtp_sink, spamd))
    before, _ = await score(spamd, offer())
    held = await hold(config, offer())

    result = await resolve(assemble(config), held.id, "release", "clerk")
    assert result.ok and result.message == f"Released: delivered to {CLERK}.", result.message
    assert len(smtp_sink.messages) == 1
    line = audit(tmp_path)[-1]
    assert (line["event"], line["learned"], line["learn_error"]) == (
        "quarantine-release", "ham", None)

    after, after_rules = await score(spamd, offer())
    assert after < before and "BAYES_00" in after_rules
    # The next one like it goes straight to the council: spamd no longer calls it spam.
    async with running_gateway(config) as gw:
        assert (await talk(gw.inbound_port, RESIDENT, [CLERK], offer()))[0] == 250
    assert QuarantineStore(config.quarantine.path).list() == []
    assert len(smtp_sink.messages) == 2


async def test_learning_turned_off_teaches_nothing(tmp_path, dns_server, smtp_sink, spamd):
    config = build_config(tmp_path, gateway_config(tmp_path, dns_server, smtp_sink, spamd,
                                                   spamd_learn=False))
    held = await hold(config, offer())
    assert (await resolve(assemble(config), held.id, "delete", "clerk")).ok
    line = audit(tmp_path)[-1]
    assert (line["learned"], line["learn_error"]) == (None, None)
    assert await score(spamd, offer()) == (10, ("COUNCIL_TEST_SPAM",))


async def test_a_blocked_senders_mail_teaches_nothing(tmp_path, dns_server, smtp_sink, spamd):
    config = build_config(tmp_path, gateway_config(tmp_path, dns_server, smtp_sink, spamd))
    (tmp_path / "blocked-senders.txt").write_text(f"{RESIDENT}\n")
    async with running_gateway(config) as gw:
        assert (await talk(gw.inbound_port, RESIDENT, [CLERK], offer()))[0] == 250
    [held] = QuarantineStore(config.quarantine.path).list()
    assert held.codes == ("blocked-sender",)
    assert (await resolve(assemble(config), held.id, "delete", "clerk")).ok
    assert audit(tmp_path)[-1]["learned"] is None
    assert await score(spamd, offer()) == (10, ("COUNCIL_TEST_SPAM",))


async def test_spamd_down_at_resolve_time_changes_nothing(tmp_path, dns_server, smtp_sink,
                                                           spamd):
    held = await hold(build_config(tmp_path, gateway_config(tmp_path, dns_server, smtp_sink,
                                                            spamd)), offer())
    gone = ("127.0.0.1", free_port())  # nothing listens there any more
    config = build_config(tmp_path, gateway_config(tmp_path, dns_server, smtp_sink, gone))
    result = await resolve(assemble(config), held.id, "delete", "clerk")
    assert (result.ok, result.message) == (True, "Deleted.")
    assert QuarantineStore(config.quarantine.path).list() == []
    line = audit(tmp_path)[-1]
    assert (line["ok"], line["learned"]) == (True, None)
    assert line["learn_error"].startswith(f"spamd at 127.0.0.1:{gone[1]} did not answer: ")


async def test_a_stalled_spamd_does_not_hold_up_or_repeat_a_release(
        tmp_path, dns_server, smtp_sink, spamd):
    held = await hold(build_config(tmp_path, gateway_config(tmp_path, dns_server, smtp_sink,
                                                            spamd)), offer())
    accepted, answer, closed = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set()  # takes the lesson and keeps quiet until told: the fault under test
        try:
            await reader.read()
            await answer.wait()
        finally:
            writer.close()
            closed.set()

    server = await asyncio.start_server(stall, "127.0.0.1", 0)
    try:
        stalled = server.sockets[0].getsockname()[:2]
        config = build_config(tmp_path, gateway_config(
            tmp_path, dns_server, smtp_sink, stalled, spamd_timeout=0.5))
        result = await resolve(assemble(config), held.id, "release", "clerk")
    finally:
        answer.set()
        server.close()
        await server.wait_closed()
    await closed.wait()
    assert accepted.is_set()
    assert (result.ok, result.message) == (True, f"Released: delivered to {CLERK}.")
    assert len(smtp_sink.messages) == 1
    assert QuarantineStore(config.quarantine.path).list() == []
    line = audit(tmp_path)[-1]
    assert (line["learned"], line["learn_error"]) == (
        None, f"spamd at 127.0.0.1:{stalled[1]} did not answer: timed out")
