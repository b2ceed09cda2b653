"""The antivirus filter against a real clamd (Debian's clamav-daemon with the project's test
signatures), plus fake clamds only to inject faults (one that hangs, one that talks nonsense).

Each message goes through the side's real pipeline, so what is asserted is what the gateway would
do: the antivirus filter's findings and the one policy's decision over them.

Stanion "Virus Protection": all mail and attachments are virus-checked; detected viruses are
reported to the Clerk/RFO and the Chairman. Kirkham rules 2 and 14.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from gateway.adapters.clamd import ClamdClient, Outcome, parse_address
from gateway.assembly import Assembly, assemble
from gateway.content import Content
from gateway.context import Envelope, MessageContext
from gateway.delivery.notices import compose
from gateway.pipeline import Outcome as RunOutcome
from gateway.policy import Side
from gateway.verdicts import Action, SmtpCode
from tests import samples
from tests.conftest import build_config
from tests.fixtures_clamd import ClamdInstance, FakeClamd, free_port

CLERK = "clerk@stanion-pc.gov.uk"
CHAIR = "chair@stanion-pc.gov.uk"
REFUSED = SmtpCode(554, "5.7.1")
SCANNER_DOWN = SmtpCode(451, "4.7.1")


def _gateway(tmp_path: Path, policy: dict[str, Any] | None = None, **clamav: Any) -> Assembly:
    """Both sides run only the antivirus check; ``clamav`` and ``policy`` are the config's
    [clamav] and [policy] tables."""
    overrides: dict[str, Any] = {"inbound": {"filters": ["antivirus"]},
                                 "outbound": {"filters": ["antivirus"]},
                                 "clamav": clamav}
    if policy is not None:
        overrides["policy"] = policy
    return assemble(build_config(tmp_path, overrides))


def _ctx(data: bytes, side: Side = "inbound") -> MessageContext:
    return MessageContext(id="m1", side=side,
                          envelope=Envelope("resident@example.org", (CLERK,)), data=data)


async def _run(gw: Assembly, data: bytes, side: Side = "inbound"
               ) -> tuple[RunOutcome, MessageContext]:
    ctx = _ctx(data, side)
    return await gw.pipelines[side].run(ctx), ctx


def _notes(gw: Assembly) -> list[tuple[str, str]]:
    """Config.notes as (key, message); each note points at the line it is about."""
    assert all(n.line for n in gw.config.notes), gw.config.notes
    return [(n.key, n.message) for n in gw.config.notes]


OLD_SPELLING = "is the old spelling (still read); in [policy] write: "


EICAR_CASES = {
    "plain body": (samples.message(body="Look:\n" + samples.EICAR.decode() + "\n"),
                   "the message"),
    "base64 attachment": (samples.message(("eicar.com", "application/octet-stream",
                                           samples.EICAR)), "the attachment eicar.com"),
    "inside a zip": (samples.message(("invoice.zip", "application/zip",
                                      samples.zip_of({"invoice.txt": samples.EICAR}))),
                     "the attachment invoice.zip"),
    "zip inside a forwarded message": (
        samples.forwarded(samples.message(("invoice.zip", "application/zip",
                                           samples.zip_of({"invoice.txt": samples.EICAR})))),
        "the attachment invoice.zip"),
}


@pytest.mark.parametrize("case", list(EICAR_CASES))
@pytest.mark.parametrize("side", ["inbound", "outbound"])
async def test_eicar_is_rejected_with_the_signature_name(clamd: ClamdInstance, tmp_path: Path,
                                                         case: str, side: Side) -> None:
    data, where = EICAR_CASES[case]
    outcome, _ = await _run(_gateway(tmp_path, address=clamd.address), data, side)
    assert outcome.decision.action is Action.REFUSE
    assert outcome.decision.smtp == REFUSED
    assert outcome.decision.text == f"Message rejected: {where} contains Eicar-Test-Signature"
    assert [f.code for f in outcome.findings] == ["virus"]
    assert outcome.findings[0].text == f"virus Eicar-Test-Signature in {where}"


async def test_clean_message_passes_and_carries_the_header(clamd: ClamdInstance,
                                                           tmp_path: Path) -> None:
    msg = samples.message(("minutes.pdf", "application/pdf", samples.pdf()))
    outcome, _ = await _run(_gateway(tmp_path, address=clamd.address), msg)
    assert outcome.decision.action is Action.DELIVER
    assert outcome.findings == ()
    assert outcome.data == b"X-Virus-Scanned: ClamAV 1.4.6 (test signatures only)\r\n" + msg


async def test_the_header_names_the_running_clamd_version(clamd: ClamdInstance) -> None:
    client = ClamdClient([parse_address(clamd.address)], 10)
    version = await client.version()
    assert version is not None and version.engine[0].isdigit()
    assert version.test_signatures_only


TESTFILES = sorted(p.name for p in samples.TESTFILES.iterdir())


async def test_all_packed_and_archived_forms_of_clam_exe_are_detected(clamd: ClamdInstance
                                                                      ) -> None:
    # One .hdb line (sigtool --md5 of clam.exe) covers all of Debian's clamav-testfiles.
    client = ClamdClient([parse_address(clamd.address)], 30)
    assert len(TESTFILES) == 44
    missed = []
    for name in TESTFILES:
        reply = await client.scan((samples.TESTFILES / name).read_bytes())
        if (reply.outcome, reply.signature) != (Outcome.INFECTED, "Clamav.Test.File-6"):
            missed.append((name, reply))
    assert missed == []


async def test_packed_program_attached_to_a_message_is_named(clamd: ClamdInstance,
                                                             tmp_path: Path) -> None:
    data = (samples.TESTFILES / "clam-upx.exe").read_bytes()
    msg = samples.message(("update.exe", "application/octet-stream", data))
    outcome, _ = await _run(_gateway(tmp_path, address=clamd.address), msg, "outbound")
    assert outcome.decision.action is Action.REFUSE
    assert outcome.decision.text == ("Message rejected: the attachment update.exe contains "
                                     "Clamav.Test.File-6")


async def test_unix_socket_works_like_tcp(clamd: ClamdInstance, tmp_path: Path) -> None:
    msg = samples.message(("eicar.com", "application/octet-stream", samples.EICAR))
    outcome, _ = await _run(_gateway(tmp_path, address=clamd.unix_address), msg)
    assert outcome.decision.action is Action.REFUSE
    assert "Eicar-Test-Signature" in outcome.decision.text


async def test_virus_alert_goes_to_clerk_and_chairman_once(clamd: ClamdInstance,
                                                           tmp_path: Path) -> None:
    msg = samples.message(("invoice.zip", "application/zip",
                           samples.zip_of({"a.txt": samples.EICAR, "b.txt": samples.EICAR})),
                          subject="Overdue invoice")
    gw = _gateway(tmp_path, address=clamd.address, alert_to=[CLERK, CHAIR])
    outcome, ctx = await _run(gw, msg)
    assert outcome.decision.action is Action.REFUSE
    assert len(outcome.notices) == 1
    alert = compose(gw.config, outcome.notices[0], outcome.decision.action, ctx)
    assert alert is not None
    assert alert["To"] == f"{CLERK}, {CHAIR}"
    assert alert["Subject"] == "Virus stopped: Eicar-Test-Signature"
    body = alert.get_content()
    for words in ("resident@example.org", CLERK, "Overdue invoice", "Eicar-Test-Signature",
                  "the attachment invoice.zip", "refused the message"):
        assert words in body


async def test_no_alert_for_clean_mail(clamd: ClamdInstance, tmp_path: Path) -> None:
    gw = _gateway(tmp_path, address=clamd.address, alert_to=[CLERK])
    outcome, _ = await _run(gw, samples.message())
    assert outcome.decision.action is Action.DELIVER
    assert outcome.notices == ()


HOLD_INBOUND_VIRUS = {
    "policy table": ({"virus": {"inbound": "hold"}}, {}),
    "old [clamav] inbound_action": (None, {"inbound_action": "quarantine"}),
}


@pytest.mark.parametrize("spelling", list(HOLD_INBOUND_VIRUS))
async def test_inbound_virus_may_be_held_instead(clamd: ClamdInstance, tmp_path: Path,
                                                 spelling: str) -> None:
    policy, old = HOLD_INBOUND_VIRUS[spelling]
    msg = samples.message(("eicar.com", "application/octet-stream", samples.EICAR))
    gw = _gateway(tmp_path, policy, address=clamd.address, alert_to=[CLERK], **old)
    inbound, ctx = await _run(gw, msg, "inbound")
    assert inbound.decision.action is Action.HOLD
    assert inbound.decision.reasons == ("virus Eicar-Test-Signature in the attachment eicar.com",)
    assert inbound.held is not None and inbound.held.filter == "antivirus"
    # The clerk and the chairman are still told, with what was done.
    [notice] = inbound.notices
    alert = compose(gw.config, notice, inbound.decision.action, ctx)
    assert alert is not None
    assert "held the message in quarantine; nobody received it" in alert.get_content()
    outbound, _ = await _run(gw, msg, "outbound")
    assert outbound.decision.action is Action.REFUSE  # the council never sends a virus on
    assert outbound.decision.smtp == REFUSED
    assert _notes(gw) == ([("clamav.inbound_action", OLD_SPELLING + 'virus = { inbound = "hold" }')]
                          if old else [])


# --------------------------------------------------------------------------- limits

def _too_big_message() -> bytes:
    # The test clamd's StreamMaxLength is 3M; this message is about 4.3M once base64-encoded.
    return samples.message(("scan.bin", "application/octet-stream", os.urandom(3_200_000)))


async def test_message_over_stream_max_length_is_refused_not_passed(clamd: ClamdInstance,
                                                                    tmp_path: Path) -> None:
    gw = _gateway(tmp_path, address=clamd.address, stream_max_length="3MiB")
    outcome, _ = await _run(gw, _too_big_message())
    assert outcome.decision.action is Action.REFUSE
    assert outcome.decision.smtp == SmtpCode(552, "5.3.4")
    assert "too big for the virus scanner" in outcome.decision.text
    assert [f.code for f in outcome.findings] == ["unscannable.too-big"]


TEMPFAIL_TOO_BIG = {
    "policy table": ({"unscannable": "tempfail"}, {}),
    "old [clamav] too_big": (None, {"too_big": "tempfail"}),
}


@pytest.mark.parametrize("spelling", list(TEMPFAIL_TOO_BIG))
async def test_message_over_stream_max_length_may_be_temp_failed(clamd: ClamdInstance,
                                                                 tmp_path: Path,
                                                                 spelling: str) -> None:
    policy, old = TEMPFAIL_TOO_BIG[spelling]
    gw = _gateway(tmp_path, policy, address=clamd.address, stream_max_length="3MiB", **old)
    outcome, _ = await _run(gw, _too_big_message())
    assert outcome.decision.action is Action.TEMPFAIL
    assert outcome.decision.smtp == SmtpCode(451, "4.3.4")
    assert outcome.decision.text == ("Message not accepted for now: the message is too big for "
                                     "the virus scanner; try again later")
    assert _notes(gw) == ([("clamav.too_big", OLD_SPELLING + 'unscannable = "tempfail"')]
                          if old else [])


async def test_content_beyond_clamd_inner_limits_is_reported(clamd: ClamdInstance,
                                                             tmp_path: Path) -> None:
    # AlertExceedsMax: archives nested deeper than MaxRecursion are flagged, not skipped.
    msg = samples.message(("deep.zip", "application/zip", samples.nested_zip(20)))
    outcome, _ = await _run(_gateway(tmp_path, address=clamd.address), msg)
    assert outcome.decision.action is Action.REFUSE
    assert outcome.decision.smtp == REFUSED
    assert "could not be fully virus-checked" in outcome.decision.text
    assert "Heuristics.Limits.Exceeded" in outcome.decision.text
    assert [f.code for f in outcome.findings] == ["unscannable.limits"]


# --------------------------------------------------------------------------- faults

async def _swallow_forever(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    while await r.read(65536):
        pass
    await asyncio.Event().wait()


async def _talk_nonsense(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    await r.readuntil(b"\0\0\0\0")
    w.write(b"220 smtp.example.org ESMTP ready\r\n")
    await w.drain()


async def test_hanging_clamd_hits_the_absolute_deadline(fake_clamd: FakeClamd,
                                                        tmp_path: Path) -> None:
    address = await fake_clamd(_swallow_forever)
    outcome, _ = await _run(_gateway(tmp_path, address=address, timeout=1), samples.message())
    assert outcome.decision.action is Action.TEMPFAIL
    # Our own deadline answered (4.7.1), not the pipeline's backstop (check-failed, 4.3.0).
    assert outcome.decision.smtp == SCANNER_DOWN
    assert outcome.decision.text == "Virus scanner unavailable, try again later"
    assert [f.code for f in outcome.findings] == ["scan-failed"]
    assert "did not answer within 1 second" in outcome.findings[0].text


async def test_nonsense_from_clamd_is_a_temporary_failure(fake_clamd: FakeClamd,
                                                          tmp_path: Path) -> None:
    gw = _gateway(tmp_path, address=await fake_clamd(_talk_nonsense))
    outcome, _ = await _run(gw, samples.message())
    assert outcome.decision.action is Action.TEMPFAIL
    assert outcome.decision.smtp == SCANNER_DOWN
    assert "makes no sense" in outcome.findings[0].text


async def test_unreachable_clamd_fails_closed(tmp_path: Path) -> None:
    gw = _gateway(tmp_path, address=f"tcp://127.0.0.1:{free_port()}")
    for side in ("inbound", "outbound"):
        outcome, _ = await _run(gw, samples.message(), side)
        assert outcome.decision.action is Action.TEMPFAIL
        assert outcome.decision.smtp == SCANNER_DOWN


DELIVER_UNSCANNED = {
    "policy table": ({"scan-failed": "deliver"}, {}),
    "old [clamav] on_error": (None, {"on_error": "accept"}),
}


@pytest.mark.parametrize("spelling", list(DELIVER_UNSCANNED))
async def test_unreachable_clamd_with_deliver_marks_the_message(tmp_path: Path,
                                                                spelling: str) -> None:
    policy, old = DELIVER_UNSCANNED[spelling]
    gw = _gateway(tmp_path, policy, address=f"tcp://127.0.0.1:{free_port()}", **old)
    msg = samples.message()
    outcome, _ = await _run(gw, msg)
    assert outcome.decision.action is Action.DELIVER
    assert outcome.data == b"X-Virus-Scanned: failed\r\n" + msg
    assert [f.code for f in outcome.findings] == ["scan-failed"]  # still recorded
    assert _notes(gw) == ([("clamav.on_error", OLD_SPELLING + 'scan-failed = "deliver"')]
                          if old else [])


async def test_next_address_is_tried_when_the_first_is_down(clamd: ClamdInstance,
                                                            fake_clamd: FakeClamd,
                                                            tmp_path: Path) -> None:
    nonsense = await fake_clamd(_talk_nonsense)
    gw = _gateway(tmp_path, address=[f"tcp://127.0.0.1:{free_port()}", nonsense,
                                     clamd.unix_address])
    msg = samples.message(("eicar.com", "application/octet-stream", samples.EICAR))
    outcome, _ = await _run(gw, msg)
    assert outcome.decision.action is Action.REFUSE
    assert "Eicar-Test-Signature" in outcome.decision.text


async def test_clamd_killed_then_restarted_is_used_again(own_clamd: ClamdInstance,
                                                         tmp_path: Path) -> None:
    gw = _gateway(tmp_path, address=own_clamd.address, timeout=5)
    msg = samples.message(("eicar.com", "application/octet-stream", samples.EICAR))
    first, _ = await _run(gw, msg)
    assert first.decision.action is Action.REFUSE
    own_clamd.kill()
    down, _ = await _run(gw, msg)
    assert down.decision.action is Action.TEMPFAIL and down.decision.smtp == SCANNER_DOWN
    await asyncio.to_thread(own_clamd.start)
    again, _ = await _run(gw, msg)
    assert again.decision.action is Action.REFUSE
    assert "Eicar-Test-Signature" in again.decision.text


async def test_a_message_in_pieces_is_scanned_whole(clamd: ClamdInstance) -> None:
    """Fields on top and the buffer read from an offset reach clamd as one stream, in chunks
    that cut the test signature in two."""
    client = ClamdClient([parse_address(clamd.address)], 30, chunk_size=7)
    buf = b"X-Dropped: 1\r\n\r\n" + samples.EICAR + b"\r\n"
    content = Content(buf, (b"Subject: pieces\r\n",), len(b"X-Dropped: 1\r\n"))
    reply = await client.scan(content)
    assert reply.outcome is Outcome.INFECTED
    assert (await client.scan(Content(b"Subject: clean\r\n\r\nnothing here\r\n"))).outcome \
        is Outcome.CLEAN
