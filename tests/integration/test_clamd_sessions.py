"""clamd sessions (IDSESSION) kept between scans: against the real clamd, and against fake ones
only to inject faults (a kept session dropped, one that hangs, one that answers out of turn).

What must hold: a kept session gives the same verdicts as a fresh connection; a session that
fails is never used again; a scan that cannot get an answer is an error (the filter turns it
into 451 4.7.1), never a pass.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from gateway.adapters.clamd import ClamdClient, Outcome, parse_address
from gateway.assembly import assemble
from gateway.context import Envelope, MessageContext
from gateway.verdicts import Action, SmtpCode
from tests import samples
from tests.conftest import build_config
from tests.fixtures_clamd import TEST_MAX_MESSAGE_SIZE, ClamdInstance, FakeClamd

SCANNER_DOWN = SmtpCode(451, "4.7.1")


def _client(address: str, timeout: float = 10) -> ClamdClient:
    return ClamdClient([parse_address(address)], timeout)


async def test_one_kept_session_carries_scan_after_scan(clamd: ClamdInstance) -> None:
    client = _client(clamd.address)
    replies = [await client.scan(data) for data in (
        samples.message(), samples.message(("eicar.com", "application/octet-stream",
                                            samples.EICAR)), samples.message())]
    assert [r.outcome for r in replies] == [Outcome.CLEAN, Outcome.INFECTED, Outcome.CLEAN]
    assert replies[1].signature == "Eicar-Test-Signature"
    assert client.idle_sessions() == 1
    client.close()


async def test_concurrent_scans_each_get_a_session_of_their_own(clamd: ClamdInstance) -> None:
    client = _client(clamd.address)
    virus = samples.message(("eicar.com", "application/octet-stream", samples.EICAR))
    datas = [virus if i % 2 else samples.message(body=f"Note {i}\n") for i in range(6)]
    for _ in range(2):
        replies = await asyncio.gather(*(client.scan(d) for d in datas))
        assert [r.outcome for r in replies] == [Outcome.CLEAN, Outcome.INFECTED] * 3
    assert 1 <= client.idle_sessions() <= 6
    client.close()


async def test_a_session_over_stream_max_length_is_not_kept(clamd: ClamdInstance) -> None:
    client = _client(clamd.address)
    assert (await client.scan(samples.message())).outcome is Outcome.CLEAN
    too_big = b"A" * (TEST_MAX_MESSAGE_SIZE * 2 + 1024 * 1024)
    assert (await client.scan(too_big)).outcome is Outcome.TOO_BIG
    assert client.idle_sessions() == 0  # clamd closes the connection after that answer
    assert (await client.scan(samples.message())).outcome is Outcome.CLEAN
    client.close()


class SessionClamd:
    """Speaks IDSESSION (and answers VERSION); ``plan[n]`` says what the n-th connection does
    with its commands in turn: "ok" answers clean, "drop" reads the command and closes, "hang"
    reads it and never answers, "wrong" answers with another command's number."""

    def __init__(self, *plan: tuple[str, ...]):
        self.plan = list(plan)
        self.connections = 0

    async def __call__(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        if await r.readuntil(b"\0") == b"zVERSION\0":  # the filter asks, outside sessions
            w.write(b"ClamAV 1.4.6\0")
            return
        steps = self.plan[min(self.connections, len(self.plan) - 1)]
        self.connections += 1
        for number, step in enumerate(steps, start=1):
            assert await r.readuntil(b"\0") == b"zINSTREAM\0"
            while size := int.from_bytes(await r.readexactly(4), "big"):
                await r.readexactly(size)
            if step == "drop":
                return
            if step == "hang":
                await asyncio.Event().wait()
            w.write(f"{number + 5 if step == 'wrong' else number}: stream: OK\0".encode())
            await w.drain()
        await r.read()


async def test_a_kept_session_clamd_dropped_costs_one_new_connection(
        fake_clamd: FakeClamd) -> None:
    fake = SessionClamd(("ok", "drop"), ("ok",))
    client = _client(await fake_clamd(fake))
    assert (await client.scan(samples.message())).outcome is Outcome.CLEAN
    assert (await client.scan(samples.message())).outcome is Outcome.CLEAN
    assert fake.connections == 2
    client.close()


async def test_dropped_session_and_no_new_answer_fails_closed(fake_clamd: FakeClamd,
                                                              tmp_path: Path) -> None:
    fake = SessionClamd(("ok", "drop"), ("drop",))
    address = await fake_clamd(fake)
    gw = assemble(build_config(tmp_path, {"inbound": {"filters": ["antivirus"]},
                                          "clamav": {"address": address, "timeout": 5}}))
    ctx = [MessageContext(id=f"m{i}", side="inbound", data=samples.message(),
                          envelope=Envelope("resident@example.org",
                                            ("clerk@stanion-pc.gov.uk",))) for i in range(2)]
    first = await gw.pipelines["inbound"].run(ctx[0])
    assert first.decision.action is Action.DELIVER
    second = await gw.pipelines["inbound"].run(ctx[1])
    assert second.decision.action is Action.TEMPFAIL
    assert second.decision.smtp == SCANNER_DOWN
    assert [f.code for f in second.findings] == ["scan-failed"]
    assert fake.connections == 2


async def test_a_hung_session_hits_the_deadline_and_is_never_used_again(
        fake_clamd: FakeClamd) -> None:
    fake = SessionClamd(("ok", "hang"), ("ok",))
    client = _client(await fake_clamd(fake), timeout=1)
    assert (await client.scan(samples.message())).outcome is Outcome.CLEAN
    hung = await client.scan(samples.message())
    assert hung.outcome is Outcome.ERROR
    assert "did not answer within 1 second" in hung.detail
    assert client.idle_sessions() == 0
    assert (await client.scan(samples.message())).outcome is Outcome.CLEAN
    assert fake.connections == 2
    client.close()


async def test_an_answer_out_of_turn_is_an_error_and_ends_the_session(
        fake_clamd: FakeClamd) -> None:
    fake = SessionClamd(("ok", "wrong"), ("ok",))
    client = _client(await fake_clamd(fake))
    assert (await client.scan(samples.message())).outcome is Outcome.CLEAN
    wrong = await client.scan(samples.message())
    assert wrong.outcome is Outcome.ERROR
    assert client.idle_sessions() == 0
    assert (await client.scan(samples.message())).outcome is Outcome.CLEAN
    assert fake.connections == 2
    client.close()
