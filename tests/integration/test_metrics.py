"""``[metrics]``: the real gateway serving ``/metrics`` and ``/health`` beside its listeners.

Messages go through the real listeners with smtplib, to a real clamd and a recording next hop;
the exposition is fetched over HTTP with urllib and read with prometheus_client's own parser,
and the counts are compared with what was sent (and with the audit log). ``/health`` is asked
with clamd up, killed and back, with the next hop up and stopped, and through the container's
own HEALTHCHECK command taken from the Dockerfile.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import smtplib
import socket
import sys
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from gateway.assembly import JOBS
from gateway.config import Config
from gateway.smtp.server import Gateway
from tests import samples
from tests.conftest import SmtpSink, build_config, running_gateway, write_config
from tests.fixtures_clamd import ClamdInstance, free_port
from tests.helpers import in_thread, make_message, send, smtp_session

ROOT = Path(__file__).parents[2]
CLERK = "clerk@stanion-pc.gov.uk"
COUNCILLOR = "cllr.jones@stanion-pc.gov.uk"
RESIDENT = "resident@example.org"
CHAIN = ["antivirus", "attachments", "trace"]
METRICS = {"metrics": {"listen": "127.0.0.1:0"}}

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


# ---------------------------------------------------------------------- helpers

@contextlib.asynccontextmanager
async def metrics_job(gw: Gateway) -> AsyncIterator[int]:
    """The metrics job as ``run`` starts it (from JOBS); yields the port it bound."""
    task = asyncio.create_task(dict(JOBS)["metrics"](gw))
    try:
        async with asyncio.timeout(10):
            while "metrics" not in gw.ports:
                assert not task.done(), "the metrics job ended without listening"
                await asyncio.sleep(0.01)
        yield gw.ports["metrics"]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _get(port: int, path: str, method: str = "GET") -> tuple[int, str, str]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return r.status, r.headers["Content-Type"], r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["Content-Type"], e.read().decode()


async def get(port: int, path: str, method: str = "GET") -> tuple[int, str, str]:
    return await in_thread(_get, port, path, method)


async def scrape(port: int) -> Samples:
    status, ctype, text = await get(port, "/metrics")
    assert status == 200 and ctype.startswith("text/plain; version=0.0.4")
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def total(found: Samples, name: str, **labels: str) -> float:
    """The sum over every series of ``name`` that has ``labels`` (others free)."""
    want = set(labels.items())
    return sum(v for (n, ls), v in found.items() if n == name and want <= set(ls))


async def _send(port: int, mail_from: str, rcpt: str, data: bytes) -> Any:
    try:
        return await in_thread(send, port, mail_from, [rcpt], data)
    except smtplib.SMTPResponseException as e:
        return e
    except smtplib.SMTPRecipientsRefused as e:
        return e


def _audit_verdicts(tmp_path: Path) -> Counter[tuple[str, str]]:
    lines = (tmp_path / "logs" / "audit.jsonl").read_text().splitlines()
    events = [json.loads(x) for x in lines]
    return Counter((e["direction"], e["verdict"]) for e in events if "verdict" in e)


def _config(tmp_path: Path, sink: SmtpSink | None, clamd_address: str,
            chain: list[str] | None = None, **over: Any) -> Config:
    sides: dict[str, Any] = {"filters": CHAIN if chain is None else chain}
    if sink is not None:
        sides["deliver_to"] = sink.url
    return build_config(tmp_path, {
        "inbound": dict(sides), "outbound": dict(sides),
        "clamav": {"address": clamd_address, "timeout": 5}, **METRICS, **over})


def _macro_document() -> tuple[str, str, bytes]:
    return ("minutes.docm", "application/vnd.ms-word.document.macroEnabled.12",
            samples.with_macros(samples.docx()))


# ---------------------------------------------------------------------- the counts

async def test_counts_match_what_was_sent(clamd: ClamdInstance, tmp_path: Path,
                                          smtp_sink: SmtpSink) -> None:
    config = _config(tmp_path, smtp_sink, clamd.address)
    virus = samples.message(("invoice.zip", "application/zip",
                             samples.zip_of({"invoice.txt": samples.EICAR})))
    async with running_gateway(config) as gw, metrics_job(gw) as port:
        before = await scrape(port)
        for _ in range(2):
            assert await _send(gw.inbound_port, RESIDENT, CLERK, make_message()) == {}
        held = await _send(gw.inbound_port, RESIDENT, CLERK, samples.message(_macro_document()))
        refused = await _send(gw.inbound_port, RESIDENT, CLERK, virus)
        assert await _send(gw.outbound_port, COUNCILLOR, RESIDENT,
                           make_message(COUNCILLOR, RESIDENT)) == {}
        out_refused = await _send(gw.outbound_port, COUNCILLOR, RESIDENT, samples.message(
            _macro_document(), sender=COUNCILLOR, to=RESIDENT))
        found = await scrape(port)
        health = await get(port, "/health")
    assert held == {}  # a hold is answered 250: the clerk decides
    assert isinstance(refused, smtplib.SMTPDataError) and refused.smtp_code == 554
    assert isinstance(out_refused, smtplib.SMTPDataError) and out_refused.smtp_code == 554
    assert len(smtp_sink.messages) >= 3  # the three deliveries (and the virus alert, if any)

    # Every series starts at 0; then exactly what was sent.
    assert value(before, "gateway_messages_total", side="inbound", action="deliver") == 0
    sent = {("inbound", "deliver"): 2, ("inbound", "hold"): 1, ("inbound", "refuse"): 1,
            ("outbound", "deliver"): 1, ("outbound", "refuse"): 1}
    for side in ("inbound", "outbound"):
        for action in ("deliver", "tag", "hold", "refuse", "tempfail", "deliver-failed"):
            assert value(found, "gateway_messages_total", side=side, action=action) == \
                sent.get((side, action), 0), (side, action)
    # ...which is what the audit log says too.
    assert _audit_verdicts(tmp_path) == Counter(sent)

    assert value(found, "gateway_findings_total", side="inbound", code="virus") == 1
    assert value(found, "gateway_findings_total", side="inbound", code="attachment.macro") == 1
    assert value(found, "gateway_findings_total", side="outbound", code="attachment.macro") == 1
    # Latency per filter, one observation per run: antivirus saw all four inbound messages,
    # attachments the three that got past it, trace the two that were passed on.
    for flt, runs in (("antivirus", 4), ("attachments", 3), ("trace", 2)):
        assert value(found, "gateway_filter_seconds_count", side="inbound", filter=flt) == runs
        assert value(found, "gateway_filter_seconds_sum", side="inbound", filter=flt) > 0 \
            or flt == "trace"
    assert value(found, "gateway_filter_seconds_count", side="outbound", filter="antivirus") == 2
    assert value(found, "gateway_message_seconds_count", side="inbound") == 4
    assert value(found, "gateway_filter_runs_total", side="inbound", filter="antivirus",
                 outcome="ok") == 4
    assert value(found, "gateway_clamd_errors_total", side="inbound") == 0
    assert total(found, "gateway_next_hop_failures_total") == 0
    assert value(found, "gateway_quarantine_messages") == 1
    assert value(found, "gateway_messages_in_flight") == 0
    assert health == (200, "text/plain; charset=utf-8", "ok\n")


async def test_refused_connections_and_failed_logins_are_counted(tmp_path: Path) -> None:
    from gateway.people.users import UsersFile

    UsersFile(tmp_path / "users").add(COUNCILLOR, "correct horse battery")
    config = build_config(tmp_path, {"inbound": {"max_connections_per_address": 1},
                                     "outbound": {"trusted_networks": []}, **METRICS})
    async with running_gateway(config) as gw, metrics_job(gw) as port:
        with socket.create_connection(("127.0.0.1", gw.inbound_port), timeout=10) as first:
            assert (await in_thread(first.recv, 4096)).startswith(b"220 ")
            with socket.create_connection(("127.0.0.1", gw.inbound_port), timeout=10) as extra:
                assert (await in_thread(extra.recv, 4096)).startswith(b"421 4.7.0")
            found = await scrape(port)
            assert value(found, "gateway_connections_open", side="inbound") == 1

        def wrong_password(c: smtplib.SMTP) -> int:
            c.ehlo("laptop")
            c.user, c.password = COUNCILLOR, "guess"
            try:  # one try: login() would go on to the next mechanism
                return c.auth("PLAIN", c.auth_plain)[0]
            except smtplib.SMTPAuthenticationError as e:
                return e.smtp_code
        assert await in_thread(smtp_session, gw.outbound_port, wrong_password) == 535

        def relay(c: smtplib.SMTP) -> int:
            c.ehlo("spammer")
            c.mail(RESIDENT)
            return c.rcpt("someone@elsewhere.example")[0]
        assert await in_thread(smtp_session, gw.inbound_port, relay) >= 500
        found = await scrape(port)
    assert gw.counters["connections refused: per-address limit"] == 1
    assert value(found, "gateway_connections_refused_total", reason="per-address limit") == 1
    assert value(found, "gateway_login_failures_total", reason="password") == 1
    assert value(found, "gateway_login_failures_total", reason="locked") == 0
    assert value(found, "gateway_login_locks_total", kind="network") == 0
    assert value(found, "gateway_envelope_refusals_total", side="inbound", stage="rcpt") == 1


# ---------------------------------------------------------------------- health

async def test_health_follows_clamd(own_clamd: ClamdInstance, tmp_path: Path) -> None:
    config = _config(tmp_path, None, own_clamd.address)  # Maildir next hops
    async with running_gateway(config) as gw, metrics_job(gw) as port:
        assert await get(port, "/health") == (200, "text/plain; charset=utf-8", "ok\n")
        own_clamd.kill()
        status, _, text = await get(port, "/health")
        assert status == 503
        assert text == (f"clamd: no answer to PING from {own_clamd.address} within 5 "
                        "seconds\n")
        # A message now is turned away for later, and counted as clamd's failure.
        err = await _send(gw.inbound_port, RESIDENT, CLERK, make_message())
        assert isinstance(err, smtplib.SMTPDataError) and err.smtp_code == 451
        found = await scrape(port)
        assert value(found, "gateway_clamd_errors_total", side="inbound") == 1
        assert value(found, "gateway_findings_total", side="inbound", code="scan-failed") == 1
        assert value(found, "gateway_messages_total", side="inbound", action="tempfail") == 1
        await in_thread(own_clamd.start)
        assert (await get(port, "/health"))[0] == 200


async def test_health_without_antivirus_does_not_ask_clamd(tmp_path: Path) -> None:
    config = _config(tmp_path, None, f"tcp://127.0.0.1:{free_port()}", chain=["trace"])
    async with running_gateway(config) as gw, metrics_job(gw) as port:
        assert (await get(port, "/health"))[0] == 200
        # The same gateway reloaded with the antivirus filter: the closed port now matters.
        gw.reload(_config(tmp_path, None, f"tcp://127.0.0.1:{free_port()}"))
        status, _, text = await get(port, "/health")
    assert status == 503 and text.startswith("clamd: no answer to PING from tcp://127.0.0.1:")


async def test_health_and_counts_when_the_next_hop_is_down(clamd: ClamdInstance,
                                                           tmp_path: Path) -> None:
    sink = SmtpSink()
    await sink.start()
    try:
        config = _config(tmp_path, sink, clamd.address)
        async with running_gateway(config) as gw, metrics_job(gw) as port:
            assert (await get(port, "/health"))[0] == 200
            await sink.stop()
            status, _, text = await get(port, "/health")
            assert status == 503
            # One line: both sides hand mail to this one server, so it is asked once.
            assert re.fullmatch(rf"inbound next hop {sink.url}: cannot be reached \(Error "
                                rf"connecting to 127.0.0.1 on port {sink.port}: .+\)\n", text)
            err = await _send(gw.inbound_port, RESIDENT, CLERK, make_message())
            found = await scrape(port)
    finally:
        await sink.stop()
    assert isinstance(err, smtplib.SMTPRecipientsRefused)
    assert err.recipients[CLERK][0] == 451
    assert value(found, "gateway_next_hop_failures_total", side="inbound",
                 kind="unreachable") == 1
    assert value(found, "gateway_envelope_refusals_total", side="inbound", stage="rcpt") == 1


async def test_health_when_a_mail_folder_cannot_be_written(tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the mailbox should be\n")
    config = build_config(tmp_path, {"inbound": {"deliver_to": f"maildir:{blocked}"},
                                     **METRICS})
    async with running_gateway(config) as gw, metrics_job(gw) as port:
        status, _, text = await get(port, "/health")
    assert status == 503
    assert text.startswith(f"inbound mail folder {blocked}: cannot be written (")
    assert text.count("\n") == 1  # the outbox and the quarantine are fine


async def test_the_containers_healthcheck_command(clamd: ClamdInstance, tmp_path: Path) -> None:
    """The HEALTHCHECK line of the Dockerfile, run as Docker runs it, against this gateway."""
    dockerfile = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    m = re.search(r"^HEALTHCHECK .*? CMD (\[.*\])\s*$", dockerfile, re.M)
    assert m, "the Dockerfile's HEALTHCHECK uses the exec form"
    argv = json.loads(m.group(1))
    assert argv[0] == "python" and "http://127.0.0.1:9125/health" in argv[2]

    async def healthcheck(port: int) -> tuple[int, str]:
        script = argv[2].replace("9125", str(port))
        proc = await asyncio.create_subprocess_exec(
            sys.executable, *argv[1:2], script, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT)
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode is not None
        return proc.returncode, out.decode()

    config = _config(tmp_path, None, clamd.address)
    async with running_gateway(config) as gw, metrics_job(gw) as port:
        assert await healthcheck(port) == (0, "ok\n")
        closed = f"tcp://127.0.0.1:{free_port()}"
        gw.reload(_config(tmp_path, None, closed))
        code, out = await healthcheck(port)
        assert code == 1
        assert out == f"clamd: no answer to PING from {closed} within 5 seconds\n"
    # And with nothing listening (the gateway is down), it fails too.
    code, out = await healthcheck(port)
    assert code == 1 and "no answer from the gateway" in out


# ---------------------------------------------------------------------- the listener

async def test_what_else_the_listener_answers(tmp_path: Path) -> None:
    config = build_config(tmp_path, METRICS)
    async with running_gateway(config) as gw, metrics_job(gw) as port:
        assert (await get(port, "/"))[0] == 404
        assert (await get(port, "/metrics", "POST"))[0] == 405
        assert await get(port, "/health", "HEAD") == (200, "text/plain; charset=utf-8", "")
        assert (await get(port, "/metrics?name[]=x"))[0] == 200

        async def raw(data: bytes) -> bytes:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                writer.write(data)
                await writer.drain()
                return await reader.read()
            except ConnectionResetError:  # closed with our bytes unread: the kernel resets
                return b""
            finally:
                writer.close()
                with contextlib.suppress(ConnectionResetError):
                    await writer.wait_closed()
        assert (await raw(b"HELLO\r\n\r\n")).startswith(b"HTTP/1.1 400 ")
        # A request head over 8 KiB is not read to its end: the connection is closed.
        assert await raw(b"GET /metrics HTTP/1.1\r\n" + b"X: y\r\n" * 2000) == b""


async def test_off_unless_listen_is_set(tmp_path: Path) -> None:
    config = build_config(tmp_path)
    async with running_gateway(config) as gw:
        await asyncio.wait_for(dict(JOBS)["metrics"](gw), 5)  # returns at once
    assert "metrics" not in gw.ports


async def test_run_serves_metrics_beside_the_listeners(tmp_path: Path) -> None:
    """``council-gateway run`` itself: the job is started from JOBS and logs its port."""
    path = write_config(tmp_path, METRICS)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "run", "--config", str(path), cwd=str(ROOT),
        stderr=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL)
    assert proc.stderr is not None
    try:
        async with asyncio.timeout(60):
            while True:
                line = (await proc.stderr.readline()).decode()
                assert line, "the gateway exited"
                if m := re.search(r"metrics listening on 127\.0\.0\.1:(\d+)", line):
                    break
        port = int(m.group(1))
        assert (await get(port, "/health"))[0] == 200
        found = await scrape(port)
        assert value(found, "gateway_messages_total", side="inbound", action="deliver") == 0
        assert value(found, "process_resident_memory_bytes") > 0
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 30)
