"""Every action, from a filter's finding through the real listener to the client and the next
hop; and what releasing held mail may and may not do."""

from __future__ import annotations

import asyncio
import json
import smtplib
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.assembly import KINDS, Assembly
from gateway.config import Config
from gateway.context import MessageContext
from gateway.pipeline import Filter, Pipeline, Stage
from gateway.policy import Policy, PolicyConfig
from gateway.quarantine.resolve import resolve
from gateway.quarantine.store import QuarantineStore
from gateway.smtp.server import Gateway
from gateway.verdicts import Action, Change, Finding, Kind, Report, Severity, SmtpCode
from tests.conftest import SmtpSink, build_config, running_gateway
from tests.helpers import in_thread, make_message, send

TEST_KINDS = (
    Kind("test.refuse", "refused", Action.REFUSE, Action.REFUSE),
    Kind("test.defer", "deferred", Action.TEMPFAIL, Action.TEMPFAIL,
         tempfail=SmtpCode(451, "4.7.1")),
    Kind("test.hold", "held", Action.HOLD, Action.HOLD),
)
POLICY = Policy((*KINDS, *TEST_KINDS))


@dataclass
class Fixed:
    name: str
    report: Report
    stage: Stage = Stage.CHECK
    timeout: float | None = None

    async def check(self, ctx: MessageContext) -> Report:
        return self.report


def finding(code: str, text: str, reply: str = "") -> Finding:
    return Finding("a", code, Severity.MEDIUM, text, reply)


class Hangs:
    name = "hangs"
    stage = Stage.CHECK
    timeout: float | None = 0.2

    async def check(self, ctx: MessageContext) -> Report:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


class Breaks:
    name = "breaks"
    stage = Stage.CHECK
    timeout: float | None = None

    async def check(self, ctx: MessageContext) -> Report:
        raise RuntimeError("secret internal detail")


def install(gw: Gateway, config: Config, filters: list[Filter], policy: Policy = POLICY) -> None:
    """Run ``filters`` on the inbound side of a running gateway."""
    gw.assembly = Assembly(config, policy, {
        "inbound": Pipeline("inbound", filters, policy),
        "outbound": gw.assembly.pipelines["outbound"]})


async def _send_through(tmp_path: Path, sink: SmtpSink, filters: list[Filter]) -> object:
    config = build_config(tmp_path, {"inbound": {"deliver_to": sink.url}})
    async with running_gateway(config) as gw:
        install(gw, config, filters)
        try:
            return await in_thread(send, gw.inbound_port, "resident@example.org",
                                   ["clerk@stanion-pc.gov.uk"], make_message())
        except smtplib.SMTPResponseException as e:
            return e


def _received_field(data: bytes) -> bytes:
    """The gateway's Received field (four lines) at the top of what it passed on."""
    return b"\r\n".join(data.split(b"\r\n")[:4]) + b"\r\n"


async def test_nothing_found_delivers(tmp_path: Path, smtp_sink: SmtpSink) -> None:
    assert await _send_through(tmp_path, smtp_sink, [Fixed("a", Report())]) == {}
    assert len(smtp_sink.messages) == 1


async def test_changes_add_headers_and_replace_the_body(tmp_path: Path,
                                                        smtp_sink: SmtpSink) -> None:
    new = make_message(body="Replaced body\n")
    filters: list[Filter] = [Fixed("a", Report(change=Change(new_bytes=new))),
                             Fixed("b", Report(change=Change((("X-B", "1"),))))]
    assert await _send_through(tmp_path, smtp_sink, filters) == {}
    data = smtp_sink.messages[0].data
    assert data == _received_field(data) + b"X-B: 1\r\n" + new


async def test_refuse_gives_5xx_with_text_and_delivers_nothing(tmp_path: Path,
                                                               smtp_sink: SmtpSink) -> None:
    err = await _send_through(tmp_path, smtp_sink, [Fixed("a", Report((finding(
        "test.refuse", "x.exe is a program",
        "Message rejected: the attachment x.exe is a program"),)))])
    assert isinstance(err, smtplib.SMTPDataError)
    assert err.smtp_code == 554
    assert err.smtp_error == b"5.7.1 Message rejected: the attachment x.exe is a program"
    assert smtp_sink.messages == []


async def test_tempfail_gives_4xx(tmp_path: Path, smtp_sink: SmtpSink) -> None:
    err = await _send_through(tmp_path, smtp_sink, [Fixed("a", Report((finding(
        "test.defer", "scanner down", "virus scanner unavailable, try again later"),)))])
    assert isinstance(err, smtplib.SMTPDataError) and err.smtp_code == 451
    assert err.smtp_error == b"4.7.1 virus scanner unavailable, try again later"
    assert smtp_sink.messages == []


async def test_hold_keeps_it_durably_and_answers_250(tmp_path: Path,
                                                     smtp_sink: SmtpSink) -> None:
    result = await _send_through(tmp_path, smtp_sink, [Fixed("a", Report((finding(
        "test.hold", "Unknown sender with an attachment"),)))])
    assert result == {}
    assert smtp_sink.messages == []
    held = QuarantineStore(tmp_path / "quarantine").list()
    assert len(held) == 1
    assert held[0].reasons == ("Unknown sender with an attachment",)
    assert held[0].held_by == "a"
    assert [f.code for f in held[0].findings] == ["test.hold"]
    assert held[0].rcpt_tos == ("clerk@stanion-pc.gov.uk",)
    assert held[0].mail_from == "resident@example.org"
    assert held[0].subject == "Pothole on Main Street"
    # One id everywhere: the audit line names the held file.
    audit = [json.loads(x) for x in (tmp_path / "logs" / "audit.jsonl").read_text().splitlines()]
    assert audit[-1]["id"] == held[0].id and audit[-1]["held_by"] == "a"


async def test_a_refusal_ends_the_run(tmp_path: Path, smtp_sink: SmtpSink) -> None:
    seen: list[str] = []

    class Spy:
        name = "spy"
        stage = Stage.CHECK
        timeout: float | None = None

        async def check(self, ctx: MessageContext) -> Report:
            seen.append("spy")
            return Report()

    err = await _send_through(tmp_path, smtp_sink, [
        Fixed("a", Report(change=Change((("X-A", "1"),)))),
        Fixed("b", Report((finding("test.refuse", "no"),))), Spy()])
    assert isinstance(err, smtplib.SMTPDataError) and err.smtp_code == 554
    assert seen == []


@pytest.mark.parametrize("bad", [Hangs(), Breaks()])
async def test_failing_or_hanging_filter_fails_closed_with_451(tmp_path: Path, smtp_sink: SmtpSink,
                                                              bad: Filter) -> None:
    err = await _send_through(tmp_path, smtp_sink, [bad])
    assert isinstance(err, smtplib.SMTPDataError) and err.smtp_code == 451
    assert err.smtp_error.startswith(b"4.3.0 ")
    assert b"secret internal detail" not in err.smtp_error
    assert smtp_sink.messages == []
    audit = [json.loads(x) for x in (tmp_path / "logs" / "audit.jsonl").read_text().splitlines()]
    assert audit[-1]["filters"][0]["outcome"] in ("timeout", "error")
    assert audit[-1]["findings"][0]["code"] == "check-failed"


async def test_quarantine_write_failure_gives_451(tmp_path: Path, smtp_sink: SmtpSink) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the quarantine folder should be")
    config = build_config(tmp_path, {"inbound": {"deliver_to": smtp_sink.url},
                                     "quarantine": {"path": str(blocker / "q")}})
    async with running_gateway(config) as gw:
        install(gw, config, [Fixed("a", Report((finding("test.hold", "junk"),)))])
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


async def test_mail_held_for_a_virus_can_never_be_released(tmp_path: Path,
                                                           smtp_sink: SmtpSink) -> None:
    config = build_config(tmp_path, {"inbound": {"deliver_to": smtp_sink.url}})
    virus = Finding("antivirus", "virus", Severity.HIGH, "virus Eicar-Test-Signature in x.zip")
    async with running_gateway(config) as gw:
        # A council that chose to keep a copy of virus mail: it is held, never passed on.
        keep = Policy(KINDS, PolicyConfig({"virus": (Action.HOLD, Action.HOLD)}))
        install(gw, config, [Fixed("antivirus", Report((virus,)))], keep)
        await in_thread(send, gw.inbound_port, "resident@example.org",
                        ["clerk@stanion-pc.gov.uk"], make_message())
        assembly = gw.assembly
        [held] = QuarantineStore(tmp_path / "quarantine").list()
        for force in (False, True):
            result = await resolve(assembly, held.id, "release", "test", force=force)
            assert not result.ok and "contains a virus" in result.message
        assert smtp_sink.messages == []
        assert len(QuarantineStore(tmp_path / "quarantine").list()) == 1
        assert (await resolve(assembly, held.id, "delete", "test")).ok
