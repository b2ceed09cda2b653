"""Every verdict kind, from a filter through the real listener to the client and the next hop."""

from __future__ import annotations

import asyncio
import json
import smtplib
from pathlib import Path

import pytest

from gateway.context import MessageContext
from gateway.pipeline import Pipeline
from gateway.quarantine.store import QuarantineStore
from gateway.verdicts import Accept, Modify, Quarantine, Reject, TempFail, Verdict
from tests.conftest import SmtpSink, build_config, running_gateway
from tests.helpers import in_thread, make_message, send


class Fixed:
    def __init__(self, name: str, verdict: Verdict):
        self.name = name
        self.verdict = verdict

    async def check(self, ctx: MessageContext) -> Verdict:
        return self.verdict


class Hangs:
    name = "hangs"
    timeout = 0.2

    async def check(self, ctx: MessageContext) -> Verdict:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


class Breaks:
    name = "breaks"

    async def check(self, ctx: MessageContext) -> Verdict:
        raise RuntimeError("secret internal detail")


async def _send_through(tmp_path: Path, sink: SmtpSink, filters: list[object]) -> object:
    config = build_config(tmp_path, {"inbound": {"deliver_to": sink.url}})
    async with running_gateway(config) as gw:
        gw.pipelines["inbound"] = Pipeline(config, "inbound", filters=filters)  # type: ignore[arg-type]
        try:
            return await in_thread(send, gw.inbound_port, "resident@example.org",
                                   ["clerk@stanion-pc.gov.uk"], make_message())
        except smtplib.SMTPResponseException as e:
            return e


async def test_accept_delivers(tmp_path: Path, smtp_sink: SmtpSink) -> None:
    assert await _send_through(tmp_path, smtp_sink, [Fixed("a", Accept())]) == {}
    assert len(smtp_sink.messages) == 1


async def test_modify_adds_headers_and_replaces_body(tmp_path: Path, smtp_sink: SmtpSink) -> None:
    new = make_message(body="Replaced body\n")
    filters = [Fixed("a", Modify(new_bytes=new)), Fixed("b", Modify(add_headers=(("X-B", "1"),)))]
    assert await _send_through(tmp_path, smtp_sink, filters) == {}
    assert smtp_sink.messages[0].data == b"X-B: 1\r\n" + new


async def test_reject_gives_5xx_with_text_and_delivers_nothing(tmp_path: Path,
                                                               smtp_sink: SmtpSink) -> None:
    err = await _send_through(tmp_path, smtp_sink, [
        Fixed("a", Reject("Message rejected: the attachment x.exe is a program"))])
    assert isinstance(err, smtplib.SMTPDataError)
    assert err.smtp_code == 554
    assert err.smtp_error == b"5.7.1 Message rejected: the attachment x.exe is a program"
    assert smtp_sink.messages == []


async def test_tempfail_gives_4xx(tmp_path: Path, smtp_sink: SmtpSink) -> None:
    err = await _send_through(tmp_path, smtp_sink, [
        Fixed("a", TempFail("virus scanner unavailable, try again later", 451, "4.7.1"))])
    assert isinstance(err, smtplib.SMTPDataError) and err.smtp_code == 451
    assert err.smtp_error.startswith(b"4.7.1 ")
    assert smtp_sink.messages == []


async def test_quarantine_holds_durably_and_answers_250(tmp_path: Path,
                                                        smtp_sink: SmtpSink) -> None:
    result = await _send_through(tmp_path, smtp_sink, [
        Fixed("a", Quarantine(("Unknown sender with an attachment",)))])
    assert result == {}
    assert smtp_sink.messages == []
    held = QuarantineStore(tmp_path / "quarantine").list()
    assert len(held) == 1
    assert held[0].reasons == ("Unknown sender with an attachment",)
    assert held[0].rcpt_tos == ("clerk@stanion-pc.gov.uk",)
    assert held[0].mail_from == "resident@example.org"
    assert held[0].subject == "Pothole on Main Street"


async def test_first_decisive_verdict_wins(tmp_path: Path, smtp_sink: SmtpSink) -> None:
    seen: list[str] = []

    class Spy:
        name = "spy"

        async def check(self, ctx: MessageContext) -> Verdict:
            seen.append("spy")
            return Accept()

    err = await _send_through(tmp_path, smtp_sink, [
        Fixed("a", Modify(add_headers=(("X-A", "1"),))), Fixed("b", Reject("no")), Spy()])
    assert isinstance(err, smtplib.SMTPDataError) and err.smtp_code == 554
    assert seen == []


@pytest.mark.parametrize("bad", [Hangs(), Breaks()])
async def test_failing_or_hanging_filter_fails_closed_with_451(tmp_path: Path, smtp_sink: SmtpSink,
                                                              bad: object) -> None:
    err = await _send_through(tmp_path, smtp_sink, [bad])
    assert isinstance(err, smtplib.SMTPDataError) and err.smtp_code == 451
    assert err.smtp_error.startswith(b"4.3.0 ")
    assert b"secret internal detail" not in err.smtp_error
    assert smtp_sink.messages == []
    audit = [json.loads(x) for x in (tmp_path / "logs" / "audit.jsonl").read_text().splitlines()]
    assert audit[-1]["filters"][0]["outcome"] in ("timeout", "error")


async def test_quarantine_write_failure_gives_451(tmp_path: Path, smtp_sink: SmtpSink) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the quarantine folder should be")
    config = build_config(tmp_path, {"inbound": {"deliver_to": smtp_sink.url},
                                     "quarantine": {"path": str(blocker / "q")}})
    async with running_gateway(config) as gw:
        gw.pipelines["inbound"] = Pipeline(config, "inbound",
                                           filters=[Fixed("a", Quarantine(("junk",)))])
        with pytest.raises(smtplib.SMTPDataError) as err:
            await in_thread(send, gw.inbound_port, "resident@example.org",
                            ["clerk@stanion-pc.gov.uk"], make_message())
    assert err.value.smtp_code == 451 and err.value.smtp_error.startswith(b"4.3.0")
    assert smtp_sink.messages == []


async def test_maildir_write_failure_gives_451(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    config = build_config(tmp_path, {"inbound": {"deliver_to": f"maildir:{blocker / 'box'}"}})
    async with running_gateway(config) as gw:
        with pytest.raises(smtplib.SMTPDataError) as err:
            await in_thread(send, gw.inbound_port, "resident@example.org",
                            ["clerk@stanion-pc.gov.uk"], make_message())
    assert err.value.smtp_code == 451 and err.value.smtp_error.startswith(b"4.3.0")


async def test_mail_held_for_a_virus_cannot_be_released(tmp_path: Path,
                                                        smtp_sink: SmtpSink) -> None:
    from gateway.quarantine.store import resolve

    config = build_config(tmp_path, {"inbound": {"deliver_to": smtp_sink.url}})
    async with running_gateway(config) as gw:
        gw.pipelines["inbound"] = Pipeline(config, "inbound", filters=[
            Fixed("a", Quarantine(("virus: Eicar-Test-Signature in invoice.zip",)))])
        await in_thread(send, gw.inbound_port, "resident@example.org",
                        ["clerk@stanion-pc.gov.uk"], make_message())
    [held] = QuarantineStore(tmp_path / "quarantine").list()
    result = await resolve(config, held.id, "release", "test")
    assert not result.ok and "contains a virus" in result.message
    assert smtp_sink.messages == []
    assert len(QuarantineStore(tmp_path / "quarantine").list()) == 1
    assert (await resolve(config, held.id, "delete", "test")).ok
