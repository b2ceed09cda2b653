"""The antivirus filter against a real clamd (Debian's clamav-daemon with the project's test
signatures), plus fake clamds only to inject faults (one that hangs, one that talks nonsense).

Stanion "Virus Protection": all mail and attachments are virus-checked; detected viruses are
reported to the Clerk/RFO and the Chairman. Kirkham rules 2 and 14.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from gateway.adapters.clamd import ClamdClient, Outcome, parse_address
from gateway.context import Envelope, MessageContext
from gateway.filters.antivirus import AntivirusFilter, build
from gateway.verdicts import Modify, Quarantine, Reject, TempFail, Verdict
from tests import samples
from tests.conftest import build_config
from tests.fixtures_clamd import ClamdInstance

CLERK = "clerk@stanion-pc.gov.uk"
CHAIR = "chair@stanion-pc.gov.uk"


def _filter(tmp_path: Path, **clamav: object) -> AntivirusFilter:
    return build(build_config(tmp_path, {"clamav": clamav}))


def _ctx(data: bytes, direction: str = "inbound") -> MessageContext:
    return MessageContext(id="m1", direction=direction,  # type: ignore[arg-type]
                          envelope=Envelope("resident@example.org", [CLERK]), data=data)


async def _check(flt: AntivirusFilter, data: bytes, direction: str = "inbound"
                 ) -> tuple[Verdict, MessageContext]:
    ctx = _ctx(data, direction)
    return await flt.check(ctx), ctx


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
@pytest.mark.parametrize("direction", ["inbound", "outbound"])
async def test_eicar_is_rejected_with_the_signature_name(clamd: ClamdInstance, tmp_path: Path,
                                                         case: str, direction: str) -> None:
    data, where = EICAR_CASES[case]
    verdict, _ = await _check(_filter(tmp_path, address=clamd.address), data, direction)
    assert isinstance(verdict, Reject)
    assert (verdict.code, verdict.enhanced) == (554, "5.7.1")
    assert verdict.text == f"Message rejected: {where} contains Eicar-Test-Signature"
    assert verdict.findings[0].code == "virus"


async def test_clean_message_passes_and_carries_the_header(clamd: ClamdInstance,
                                                           tmp_path: Path) -> None:
    msg = samples.message(("minutes.pdf", "application/pdf", samples.pdf()))
    verdict, _ = await _check(_filter(tmp_path, address=clamd.address), msg)
    assert verdict == Modify(add_headers=(("X-Virus-Scanned",
                                           "ClamAV 1.4.6 (test signatures only)"),))


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
    verdict, _ = await _check(_filter(tmp_path, address=clamd.address), msg, "outbound")
    assert isinstance(verdict, Reject)
    assert verdict.text == ("Message rejected: the attachment update.exe contains "
                            "Clamav.Test.File-6")


async def test_unix_socket_works_like_tcp(clamd: ClamdInstance, tmp_path: Path) -> None:
    msg = samples.message(("eicar.com", "application/octet-stream", samples.EICAR))
    verdict, _ = await _check(_filter(tmp_path, address=clamd.unix_address), msg)
    assert isinstance(verdict, Reject) and "Eicar-Test-Signature" in verdict.text


async def test_virus_alert_goes_to_clerk_and_chairman_once(clamd: ClamdInstance,
                                                           tmp_path: Path) -> None:
    msg = samples.message(("invoice.zip", "application/zip",
                           samples.zip_of({"a.txt": samples.EICAR, "b.txt": samples.EICAR})),
                          subject="Overdue invoice")
    flt = _filter(tmp_path, address=clamd.address, alert_to=[CLERK, CHAIR])
    verdict, ctx = await _check(flt, msg)
    assert isinstance(verdict, Reject)
    assert len(ctx.notices) == 1
    alert = ctx.notices[0]
    assert alert["To"] == f"{CLERK}, {CHAIR}"
    assert alert["Subject"] == "Virus stopped: Eicar-Test-Signature"
    body = alert.get_content()
    for words in ("resident@example.org", CLERK, "Overdue invoice", "Eicar-Test-Signature",
                  "the attachment invoice.zip", "refused the message"):
        assert words in body


async def test_no_alert_for_clean_mail(clamd: ClamdInstance, tmp_path: Path) -> None:
    flt = _filter(tmp_path, address=clamd.address, alert_to=[CLERK])
    _, ctx = await _check(flt, samples.message())
    assert ctx.notices == []


async def test_inbound_virus_may_be_quarantined_instead(clamd: ClamdInstance,
                                                        tmp_path: Path) -> None:
    msg = samples.message(("eicar.com", "application/octet-stream", samples.EICAR))
    flt = _filter(tmp_path, address=clamd.address, inbound_action="quarantine")
    verdict, _ = await _check(flt, msg, "inbound")
    assert isinstance(verdict, Quarantine)
    assert verdict.reasons == ("virus: the attachment eicar.com contains Eicar-Test-Signature",)
    outbound, _ = await _check(flt, msg, "outbound")
    assert isinstance(outbound, Reject)  # the council never sends a virus on


# --------------------------------------------------------------------------- limits

async def test_message_over_stream_max_length_is_refused_not_passed(clamd: ClamdInstance,
                                                                    tmp_path: Path) -> None:
    # The test clamd's StreamMaxLength is 3M; this message is about 4.3M once base64-encoded.
    msg = samples.message(("scan.bin", "application/octet-stream", os.urandom(3_200_000)))
    verdict, _ = await _check(_filter(tmp_path, address=clamd.address,
                                      stream_max_length="3MiB"), msg)
    assert isinstance(verdict, Reject)
    assert (verdict.code, verdict.enhanced) == (552, "5.3.4")
    assert "too big for the virus scanner" in verdict.text


async def test_message_over_stream_max_length_may_be_temp_failed(clamd: ClamdInstance,
                                                                 tmp_path: Path) -> None:
    msg = samples.message(("scan.bin", "application/octet-stream", os.urandom(3_200_000)))
    verdict, _ = await _check(_filter(tmp_path, address=clamd.address, too_big="tempfail",
                                      stream_max_length="3MiB"), msg)
    assert isinstance(verdict, TempFail)
    assert verdict.code == 451 and "too big" in verdict.text


async def test_content_beyond_clamd_inner_limits_is_reported(clamd: ClamdInstance,
                                                             tmp_path: Path) -> None:
    # AlertExceedsMax: archives nested deeper than MaxRecursion are flagged, not skipped.
    msg = samples.message(("deep.zip", "application/zip", samples.nested_zip(20)))
    verdict, _ = await _check(_filter(tmp_path, address=clamd.address), msg)
    assert isinstance(verdict, Reject)
    assert "could not be fully virus-checked" in verdict.text
    assert "Heuristics.Limits.Exceeded" in verdict.text


# --------------------------------------------------------------------------- faults

FakeHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture
async def fake_clamd() -> AsyncIterator[Callable[[FakeHandler], Awaitable[str]]]:
    servers: list[asyncio.Server] = []
    tasks: set[asyncio.Task[None]] = set()

    async def serve(handler: FakeHandler) -> str:
        async def run(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            tasks.add(task)
            try:
                await handler(r, w)
            finally:
                w.close()

        server = await asyncio.start_server(run, "127.0.0.1", 0)
        servers.append(server)
        return f"tcp://127.0.0.1:{server.sockets[0].getsockname()[1]}"

    yield serve
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for server in servers:
        server.close()
        await server.wait_closed()


async def _swallow_forever(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    while await r.read(65536):
        pass
    await asyncio.Event().wait()


async def _talk_nonsense(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    await r.readuntil(b"\0\0\0\0")
    w.write(b"220 smtp.example.org ESMTP ready\r\n")
    await w.drain()


async def test_hanging_clamd_hits_the_absolute_deadline(fake_clamd, tmp_path: Path  # type: ignore[no-untyped-def]
                                                        ) -> None:
    address = await fake_clamd(_swallow_forever)
    flt = _filter(tmp_path, address=address, timeout=1)
    verdict, _ = await _check(flt, samples.message())
    assert isinstance(verdict, TempFail)
    assert (verdict.code, verdict.enhanced) == (451, "4.7.1")
    assert verdict.text == "Virus scanner unavailable, try again later"
    # Our own deadline answered (4.7.1), not the pipeline's backstop (4.3.0).
    assert "did not answer within 1 second" in verdict.findings[0].text


async def test_nonsense_from_clamd_is_a_temporary_failure(fake_clamd, tmp_path: Path  # type: ignore[no-untyped-def]
                                                          ) -> None:
    flt = _filter(tmp_path, address=await fake_clamd(_talk_nonsense))
    verdict, _ = await _check(flt, samples.message())
    assert isinstance(verdict, TempFail) and verdict.enhanced == "4.7.1"
    assert "makes no sense" in verdict.findings[0].text


async def test_unreachable_clamd_fails_closed(tmp_path: Path) -> None:
    from tests.fixtures_clamd import free_port

    flt = _filter(tmp_path, address=f"tcp://127.0.0.1:{free_port()}")
    verdict, _ = await _check(flt, samples.message())
    assert isinstance(verdict, TempFail)
    assert (verdict.code, verdict.enhanced) == (451, "4.7.1")


async def test_unreachable_clamd_with_on_error_accept_marks_the_message(tmp_path: Path) -> None:
    from tests.fixtures_clamd import free_port

    flt = _filter(tmp_path, address=f"tcp://127.0.0.1:{free_port()}", on_error="accept")
    verdict, _ = await _check(flt, samples.message())
    assert isinstance(verdict, Modify)
    assert verdict.add_headers == (("X-Virus-Scanned", "failed"),)


async def test_next_address_is_tried_when_the_first_is_down(clamd: ClamdInstance,
                                                            fake_clamd, tmp_path: Path  # type: ignore[no-untyped-def]
                                                            ) -> None:
    from tests.fixtures_clamd import free_port

    nonsense = await fake_clamd(_talk_nonsense)
    flt = _filter(tmp_path, address=[f"tcp://127.0.0.1:{free_port()}", nonsense,
                                     clamd.unix_address])
    msg = samples.message(("eicar.com", "application/octet-stream", samples.EICAR))
    verdict, _ = await _check(flt, msg)
    assert isinstance(verdict, Reject) and "Eicar-Test-Signature" in verdict.text


async def test_clamd_killed_then_restarted_is_used_again(own_clamd: ClamdInstance,
                                                         tmp_path: Path) -> None:
    flt = _filter(tmp_path, address=own_clamd.address, timeout=5)
    msg = samples.message(("eicar.com", "application/octet-stream", samples.EICAR))
    first, _ = await _check(flt, msg)
    assert isinstance(first, Reject)
    own_clamd.kill()
    down, _ = await _check(flt, msg)
    assert isinstance(down, TempFail) and down.enhanced == "4.7.1"
    await asyncio.to_thread(own_clamd.start)
    again, _ = await _check(flt, msg)
    assert isinstance(again, Reject) and "Eicar-Test-Signature" in again.text
