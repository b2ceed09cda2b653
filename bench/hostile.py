"""Hostile senders: peak memory per message, latency under hostile MIME, connection floods.

The gateway runs as its own process (``python -m gateway run``, as deployed), with the default
inbound chain (antivirus, attachments, junk, confidential, trace), a real clamd started for the
benchmark (project test signatures, ``bench/_clamd.py``), a recording SMTP sink as the next hop
of both sides (aiosmtpd in a thread of this process), and DNS pointed at a stub in this process
that answers SERVFAIL at once, so SPF, DKIM and DMARC look-ups fail fast as "unknown" (a closed
port, as in ``tests/conftest.py``, makes each look-up wait out its timeout instead). A fresh
gateway is started for every run of every case, so no case inherits another's memory or
left-over work. Three measurements, each printed as a markdown table:

1. **Peak memory**: the gateway process's resident-set high-water mark (``VmHWM`` in
   ``/proc/PID/status``, reset through ``/proc/PID/clear_refs`` after one warm-up message)
   above its idle baseline (``VmRSS`` before the message), for one realistic message of 1, 5,
   10 and 20 MiB (a text body and two base64 attachments: a PDF and a photo, random bytes so
   clamd's cache of clean files never helps) and for four concurrent 20 MiB messages.
   Goal: at most 3 x the message size per message in flight.
2. **Latency under hostile MIME**: a small plain message is sent on a new connection every
   50 ms (open loop: each round trip, connect to the end-of-DATA reply, is timed from when it
   was due, so a stalled gateway cannot hide behind a slow client; the probes come from eight
   loopback addresses in turn, as an MX's mail comes from many servers), with none, one or
   three hostile messages in progress from another address, each sender sending its message
   again as soon as it is answered until the window is over (each copy with a header of its
   own, so that clamd's cache of clean files does not help): (a) 2 MB with 50,000 MIME
   parts, (b) one 3.8 MB HTML part, (c) a multipart nested 1,000 deep. Goal: p99 under 1 s
   with three running.
3. **Connection flood**: one address (127.0.0.2; the gateway counts IPv4 addresses) opens N
   idle connections to each side, up to the per-address cap and beyond; then a councillor
   (127.0.0.1) sends on the submission port and a sender from another address (127.0.0.3) on
   the MX port, and the flooder's closed connections are timed until it is greeted again.

Below the tables: the time each filter took (from the gateway's own audit records) and, for the
latency part, where the slowest probes waited (step by step) and the probes' median in each
second after the hostile senders started, which shows when the gateway stalled and for how long.

    python -m bench.hostile             # full: 3 runs of every case (about 6 minutes)
    python -m bench.hostile --quick     # 1 run, shorter windows (under 2 minutes)
    python -m bench.hostile --only latency --runs 1 --py-spy /tmp/spy --py-spy-gil
    PYTHONPATH=/path/to/memray python -m bench.hostile --only memory --runs 1 --memray /tmp/m

Run from the repository root. Linux only (``/proc``). Figures go to docs/benchmarks.md
("Hostile senders"). Not part of the test suite: speed is measured here, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import re
import shlex
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import tomli_w

from bench._clamd import bench_clamd
from bench._rig import (
    CLERK,
    DOMAIN,
    MIB,
    RESIDENT,
    GatewayProcess,
    Options,
    Sink,
    clamd_version,
    cpu_model,
    gateway,
    gateway_config,
    median,
    package_version,
    percentile,
    read_reply,
    revision,
    spread,
    wire,
)

COUNCILLOR = f"cllr.smith@{DOMAIN}"
PROBE_ADDR = "127.0.0.1"      # the councillor (and the default client address)
# The small messages of the latency part come from these in turn, as an MX's mail comes from
# many servers: the per-address cap is for floods, not for the measurement.
PROBE_ADDRS = tuple(f"127.0.1.{i}" for i in range(1, 9))
FLOODER_ADDR = "127.0.0.2"    # the connection flood
OTHER_ADDR = "127.0.0.3"      # hostile senders, and the MX sender during the flood
PROBE_INTERVAL = 0.050
PROBE_IN_FLIGHT = 40          # 5 an address, well inside the caps (20 an address, 100 a side)
HOSTILE_TIMEOUT = 300.0       # longest a hostile message is waited for


# ---------------------------------------------------------------------------- SMTP client

@dataclass
class Sent:
    code: int          # the final reply's code (0: no reply: a connection error or timeout)
    reply: str         # the final reply (or what went wrong)
    seconds: float     # connect to the end-of-DATA reply (or to the failure)
    stage: str         # where it ended: "greeting", "mail", "rcpt", "data" or "end"
    # seconds from the start until each step was answered: "wait" (a free probe slot),
    # "connect", "greeting", "ehlo", "mail", "rcpt", "data" (354), "end" (end-of-DATA reply)
    marks: dict[str, float] = field(default_factory=dict)


async def send(port: int, mail_from: str, rcpts: Sequence[str], data: bytes, *,
               local: str = PROBE_ADDR, deadline: float = 120.0,
               started: float | None = None) -> Sent:
    """One transaction on a new connection; ``data`` is already :func:`wire`-ready. Timed from
    ``started`` (a ``perf_counter`` value; default: now) to the end-of-DATA reply."""
    t0 = time.perf_counter() if started is None else started
    marks = {"wait": time.perf_counter() - t0}
    stage = "connect"
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(deadline):
            reader, writer = await asyncio.open_connection("127.0.0.1", port,
                                                           local_addr=(local, 0))
            marks["connect"] = time.perf_counter() - t0
            stage = "greeting"
            code, text = await read_reply(reader)
            marks["greeting"] = time.perf_counter() - t0
            if code != 220:
                return Sent(code, text, time.perf_counter() - t0, stage, marks)
            for stage, command, want in (
                    ("ehlo", b"EHLO bench.example.org\r\n", 250),
                    ("mail", f"MAIL FROM:<{mail_from}>\r\n".encode(), 250),
                    *(("rcpt", f"RCPT TO:<{r}>\r\n".encode(), 250) for r in rcpts),
                    ("data", b"DATA\r\n", 354)):
                writer.write(command)
                code, text = await read_reply(reader)
                marks[stage] = time.perf_counter() - t0
                if code != want:
                    return Sent(code, text, time.perf_counter() - t0, stage, marks)
            stage = "end"
            writer.write(data)
            writer.write(b".\r\n")
            await writer.drain()
            code, text = await read_reply(reader)
            seconds = marks["end"] = time.perf_counter() - t0
            writer.write(b"QUIT\r\n")
            return Sent(code, text, seconds, stage, marks)
    except TimeoutError:
        return Sent(0, f"no reply within {deadline:.0f} s", time.perf_counter() - t0, stage)
    except (OSError, ConnectionError) as e:
        return Sent(0, f"{type(e).__name__}: {e}", time.perf_counter() - t0, stage)
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 2)


# ---------------------------------------------------------------------------- messages

def _headers(subject: str, sender: str = RESIDENT, to: str = CLERK) -> bytes:
    return (f"From: Pat Resident <{sender}>\r\nTo: {to}\r\nSubject: {subject}\r\n"
            f"Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n"
            f"Message-ID: {make_msgid(domain='example.org')}\r\nMIME-Version: 1.0\r\n").encode()


PROSE = ("Dear Clerk, please find attached the report on the footpath survey and the photos of "
         "the bridge by the allotments, as discussed at the last meeting of the council.\n")


def small_message(i: int = 0, sender: str = RESIDENT, to: str = CLERK) -> bytes:
    """The probe: a short plain-text note, about 1 KB."""
    return wire(_headers(f"Footpath by the church, note {i}", sender, to)
                + b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
                + (PROSE * 4).replace("\n", "\r\n").encode())


def _pdf_head() -> bytes:
    try:
        from tests import samples
        return samples.pdf()
    except Exception:  # pypdf or the tests package missing: a minimal PDF header will do
        return b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n"


def realistic_message(size: int, *, subject: str = "Footpath survey and photos") -> bytes:
    """About ``size`` bytes on the wire: a text body (1 % of it, at least 4 KB) and two base64
    attachments, a PDF (60 %) and a JPEG photo (the rest), padded with fresh random bytes."""
    body = PROSE * max(1, int(max(4096, size // 100) // len(PROSE)))
    # base64 with 76-character lines and CRLF: 78 bytes on the wire for every 57 of payload
    payload = max(4096, int((size - len(body) - 2048) * 57 / 78))
    pdf = _pdf_head()
    pdf += os.urandom(max(0, int(payload * 0.6) - len(pdf)))
    jpeg = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    jpeg += os.urandom(max(0, payload - len(pdf) - len(jpeg)))
    msg = EmailMessage()
    msg["From"] = f"Pat Resident <{RESIDENT}>"
    msg["To"] = CLERK
    msg["Subject"] = subject
    msg["Date"] = "Mon, 23 Nov 2026 10:00:00 +0000"
    msg["Message-ID"] = make_msgid(domain="example.org")
    msg.set_content(body)
    msg.add_attachment(pdf, maintype="application", subtype="pdf", filename="survey.pdf")
    msg.add_attachment(jpeg, maintype="image", subtype="jpeg", filename="bridge.jpg")
    return wire(msg.as_bytes(policy=msg.policy.clone(linesep="\r\n")))


def many_parts_message(parts: int = 50_000, total: int = 2_000_000) -> bytes:
    """``parts`` tiny text parts in one multipart/mixed, about ``total`` bytes."""
    boundary = b"=_many"
    head = (_headers("Many parts") + b'Content-Type: multipart/mixed; boundary="'
            + boundary + b'"\r\n\r\n')
    skeleton = b"--" + boundary + b"\r\nContent-Type: text/plain\r\n\r\n\r\n"
    fill = max(1, (total - len(head)) // parts - len(skeleton))
    text = (b"spam " * (fill // 5 + 1))[:fill]
    part = b"--" + boundary + b"\r\nContent-Type: text/plain\r\n\r\n" + text + b"\r\n"
    return wire(head + part * parts + b"--" + boundary + b"--\r\n")


def big_html_message(total: int = 3_800_000) -> bytes:
    """One text/html part of about ``total`` bytes: advertising markup, dense with tags and
    links, as a bulk sender's newsletter is, only much longer."""
    line = ('<div class="offer"><p><b>Limited time offer</b> on <i>garden</i> '
            '<a href="https://offers.example.net/p/{n}">offer {n}</a> '
            '<span style="color:#c00">act now</span><br></p></div>\r\n')
    head = (_headers("Offers you will not want to miss")
            + b"Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
            + b"\r\n<html><body>\r\n")
    chunks, size, n = [head], len(head), 0
    while size < total:
        piece = line.format(n=n).encode()
        chunks.append(piece)
        size += len(piece)
        n += 1
    chunks.append(b"</body></html>\r\n")
    return wire(b"".join(chunks))


def nested_message(depth: int = 1_000) -> bytes:
    """A multipart inside a multipart ... ``depth`` deep, with one text part at the bottom."""
    out = [_headers("Nested")]
    for level in range(depth):
        out.append(f'Content-Type: multipart/mixed; boundary="b{level}"\r\n\r\n'
                   f"--b{level}\r\n".encode())
    out.append(b"Content-Type: text/plain\r\n\r\nhello from the bottom\r\n")
    for level in reversed(range(depth)):
        out.append(f"--b{level}--\r\n".encode())
    return wire(b"".join(out))


# kind: (what it is, its Subject, how it is made)
HOSTILE: dict[str, tuple[str, str, Callable[[], bytes]]] = {
    "parts": ("2 MB, 50,000 MIME parts", "Many parts", many_parts_message),
    "html": ("3.8 MB HTML part", "Offers you will not want to miss", big_html_message),
    "nested": ("multipart nested 1,000 deep", "Nested", nested_message),
}


async def warm_up(gw: GatewayProcess) -> None:
    """One small realistic message and one probe through the whole chain, so that lazily
    imported libraries and first-use caches are in the baseline, not in the figure."""
    for data in (realistic_message(64 * 1024, subject="Warm-up"), small_message()):
        r = await send(gw.in_port, RESIDENT, [CLERK], data, local=OTHER_ADDR)
        if r.code != 250:
            raise RuntimeError(f"warm-up message answered {r.reply!r}\n"
                               + "\n".join(gw.errors()[-10:]))


# ---------------------------------------------------------------------------- audit records

def verdicts(records: Sequence[dict[str, Any]]) -> str:
    """What the gateway did with the messages, from its audit records: verdict (finding codes
    that decided)."""
    out: Counter[str] = Counter()
    for r in records:
        codes = sorted({f.get("code", "?") for f in r.get("findings", ())
                        if isinstance(f, dict) and f.get("code") in DECISIVE})
        out[r.get("verdict", "?") + (f" ({', '.join(codes)})" if codes else "")] += 1
    return ", ".join(f"{n} {text}" for text, n in out.most_common()) or "no audit record"


# The finding codes worth naming beside a verdict (the rest are junk's signals and the like).
DECISIVE = {"too-complex", "malformed", "check-failed", "virus", "unscannable.too-big",
            "unscannable.limits", "scan-failed", "junk", "confidential"}


def step_times(records: Sequence[dict[str, Any]]) -> str:
    """Median milliseconds of each filter, and of the whole message, from the audit records."""
    per: dict[str, list[float]] = {}
    for r in records:
        for f in r.get("filters", ()):
            outcome = f.get("outcome")
            name = str(f.get("name")) + ("" if outcome == "ok" else f" ({outcome})")
            per.setdefault(name, []).append(float(f.get("ms", 0)))
    whole = [float(r.get("ms", 0)) for r in records]
    parts = [f"{name} {median(v):.0f}" for name, v in per.items()]
    return (", ".join(parts) + f"; whole message {median(whole):.0f} ms") if records else "–"


# ---------------------------------------------------------------------------- 1. memory

MEMORY_SUBJECT = "Footpath survey and photos"


@dataclass
class MemoryRun:
    baseline: int
    above: int
    seconds: float
    replies: list[str]
    sampled_only: bool
    records: list[dict[str, Any]] = field(default_factory=list)


async def memory_run(opts: Options, size: int, count: int, label: str) -> MemoryRun:
    messages = [realistic_message(size, subject=MEMORY_SUBJECT) for _ in range(count)]
    async with gateway(opts, label) as gw:
        await warm_up(gw)
        await asyncio.sleep(0.5)  # let the warm-up's threads and buffers settle
        baseline = gw.rss()
        gw.reset_hwm()
        sampled = baseline
        done = asyncio.Event()

        async def sample() -> None:
            nonlocal sampled
            while not done.is_set():
                with contextlib.suppress(OSError):
                    sampled = max(sampled, gw.rss())
                await asyncio.sleep(0.01)

        sampler = asyncio.create_task(sample())
        started = time.perf_counter()
        results = await asyncio.gather(*(
            send(gw.in_port, RESIDENT, [CLERK], m, local=OTHER_ADDR, deadline=600)
            for m in messages))
        seconds = time.perf_counter() - started
        done.set()
        await sampler
        peak = max(sampled, gw.hwm() if gw.hwm_reset else 0)
        run = MemoryRun(baseline, peak - baseline, seconds, [r.reply for r in results],
                        not gw.hwm_reset)
    run.records = gw.records(MEMORY_SUBJECT)
    return run


async def memory_section(opts: Options, runs: int) -> list[str]:
    cases = [(1, 1), (5, 1), (10, 1), (20, 1), (20, 4)]
    rows, notes = [], []
    sampled = False
    for mib, count in cases:
        results = []
        for run in range(runs):
            results.append(await memory_run(opts, mib * MIB, count, f"memory-{mib}x{count}-{run}"))
            r = results[-1]
            sampled = sampled or r.sampled_only
            print(f"  memory {count} x {mib} MiB run {run + 1}: baseline {r.baseline / MIB:.0f} "
                  f"MiB, peak +{r.above / MIB:.0f} MiB, {r.seconds:.1f} s, "
                  f"{Counter(x[:40] for x in r.replies)}", file=sys.stderr)
        above = [r.above / MIB for r in results]
        ratio = [a / (mib * count) for a in above]
        replies = Counter(_short(x) for r in results for x in r.replies)
        records = [x for r in results for x in r.records]
        name = f"{'one' if count == 1 else 'four concurrent'} × {mib} MiB"
        rows.append(
            f"| {name} | {median([r.baseline / MIB for r in results]):.0f} | {spread(above)} | "
            f"{median(ratio):.1f} × | {'yes' if median(ratio) <= 3 else '**no**'} | "
            f"{spread([r.seconds for r in results], '{:.1f}')} | {_replies(replies)}: "
            f"{verdicts(records)} |")
        notes.append(f"- {name}: {step_times(records)}")
    return [
        "| message | idle baseline MiB | peak above baseline MiB | per MiB in flight | "
        "≤ 3 × | time to reply s | answered |",
        "|---|---:|---:|---:|:---:|---:|---|",
        *rows,
        "",
        "Time in each step (median ms, from the gateway's audit records):",
        "",
        *notes,
    ] + (["", "(clear_refs not permitted: peak is the maximum of VmRSS sampled every 10 ms)"]
         if sampled else [])


def _short(reply: str) -> str:
    reply = re.sub(r"\b[0-9a-f]{12}\b", "ID", reply)  # message ids
    return reply if len(reply) <= 90 else reply[:87] + "..."


def _replies(replies: Counter[str]) -> str:
    return "; ".join(f"{n} × `{text}`" if len(replies) > 1 or n > 1 else f"`{text}`"
                     for text, n in replies.most_common()).replace("|", "\\|")


# ---------------------------------------------------------------------------- 2. latency

PROBE_SUBJECT = "Footpath by the church, note 0"


@dataclass
class LatencyRun:
    probes: list[float]         # seconds, for probes due while the hostile messages ran
    probe_failures: Counter[str]
    probe_sent: list[Sent]
    probe_times: list[tuple[float, float]]  # (seconds after the hostile senders started, rtt)
    hostile: list[Sent]
    window: float
    records: list[dict[str, Any]] = field(default_factory=list)        # the hostile messages'
    probe_records: list[dict[str, Any]] = field(default_factory=list)


async def probe_loop(port: int, stop: asyncio.Event, out: list[tuple[float, Sent]]) -> None:
    """A small message every PROBE_INTERVAL, each timed from when it was due (open loop)."""
    slots = asyncio.Semaphore(PROBE_IN_FLIGHT)
    tasks: set[asyncio.Task[None]] = set()
    data = small_message()
    first = time.perf_counter()
    n = 0

    async def one(due: float, local: str) -> None:
        async with slots:
            r = await send(port, RESIDENT, [CLERK], data, local=local, deadline=120,
                           started=due)
        out.append((due, r))

    while not stop.is_set():
        due = first + n * PROBE_INTERVAL
        n += 1
        delay = due - time.perf_counter()
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            if stop.is_set():
                break
        t = asyncio.create_task(one(due, PROBE_ADDRS[n % len(PROBE_ADDRS)]))
        tasks.add(t)
        t.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(list(tasks), timeout=180)


async def latency_run(opts: Options, kind: str | None, count: int, window: float,
                      label: str) -> LatencyRun:
    hostile_data = HOSTILE[kind][2]() if kind else b""
    async with gateway(opts, label) as gw:
        await warm_up(gw)
        stop = asyncio.Event()
        samples: list[tuple[float, Sent]] = []
        prober = asyncio.create_task(probe_loop(gw.in_port, stop, samples))
        await asyncio.sleep(0.5)  # probes running before the hostile senders start
        start = time.perf_counter()
        hostile: list[Sent] = []

        async def hostile_sender() -> None:
            while True:
                # A header of its own for every copy, so that no two are the same bytes (clamd
                # caches the hashes of clean files, and a real sender varies its mail too).
                data = f"X-Bench-Copy: {os.urandom(8).hex()}\r\n".encode() + hostile_data
                hostile.append(await send(gw.in_port, RESIDENT, [CLERK], data,
                                          local=OTHER_ADDR, deadline=HOSTILE_TIMEOUT))
                if time.perf_counter() - start >= window:
                    return

        if kind:
            await asyncio.gather(*(hostile_sender() for _ in range(count)))
        else:
            await asyncio.sleep(window)
        end = time.perf_counter()
        stop.set()
        await prober
    inside = [(due, r) for due, r in samples if start <= due <= end]
    ok = [r for _, r in inside if r.code == 250]
    failures = Counter(_short(r.reply) for _, r in inside if r.code != 250)
    times = [(due - start, r.seconds) for due, r in inside if r.code == 250]
    return LatencyRun([r.seconds for r in ok], failures, ok, times, hostile, end - start,
                      gw.records(HOSTILE[kind][1]) if kind else [], gw.records(PROBE_SUBJECT))


STEPS = ("wait", "connect", "greeting", "ehlo", "mail", "rcpt", "data", "end")


def slowest_steps(sent: Sequence[Sent], share: float = 0.05) -> str:
    """Where the slowest ``share`` of the probes spent their time, step by step (median ms
    from one client step's answer to the next)."""
    if not sent:
        return "no probes"
    slow = sorted(sent, key=lambda s: s.seconds)[-max(1, round(len(sent) * share)):]
    parts = []
    for i, step in enumerate(STEPS):
        deltas = [s.marks[step] - (s.marks[STEPS[i - 1]] if i else 0.0) for s in slow
                  if step in s.marks and (i == 0 or STEPS[i - 1] in s.marks)]
        if deltas:
            parts.append(f"{step} {median(deltas) * 1000:.0f}")
    return (f"the slowest {len(slow)} probe(s) waited (median ms per step): "
            + ", ".join(parts))


def by_second(times: Sequence[tuple[float, float]], seconds: int = 12) -> str:
    """The probes' median round trip for each second after the hostile senders started (the
    first ``seconds`` of them): when the gateway stalled, and for how long."""
    buckets: dict[int, list[float]] = {}
    for at, rtt in times:
        buckets.setdefault(int(at), []).append(rtt * 1000)
    shown = [f"{b}: {median(buckets[b]):.0f}" for b in sorted(buckets)[:seconds]]
    more = " ..." if len(buckets) > seconds else ""
    return "probe p50 ms in each second after the hostile senders started: " + ", ".join(
        shown) + more


def latency_scenarios(cases: str) -> list[tuple[str | None, int]]:
    """The latency cases to run: all, or those ``--case`` names (``parts:3,html``)."""
    every: list[tuple[str | None, int]] = [(None, 0)]
    every += [(kind, n) for kind in HOSTILE for n in (1, 3)]
    if not cases:
        return every
    chosen = []
    for name in cases.split(","):
        kind, _, n = name.partition(":")
        chosen += [(k, c) for k, c in every
                   if (k or "none") == kind and (not n or str(c) == n)]
    return chosen


async def latency_section(opts: Options, runs: int, window: float,
                          cases: str = "") -> list[str]:
    scenarios = latency_scenarios(cases)
    rows, notes = [], []
    for kind, count in scenarios:
        results = []
        for run in range(runs):
            label = f"latency-{kind or 'none'}x{count}-{run}"
            results.append(await latency_run(opts, kind, count, window, label))
            r = results[-1]
            print(f"  latency {kind or 'none'} x {count} run {run + 1}: {len(r.probes)} probes,"
                  f" p50 {percentile(r.probes, 50) * 1000:.0f} ms, p99 "
                  f"{percentile(r.probes, 99) * 1000:.0f} ms, hostile "
                  f"{[round(h.seconds, 2) for h in r.hostile][:6]} "
                  f"{Counter(_short(h.reply)[:50] for h in r.hostile)}", file=sys.stderr)
        p50 = [percentile(r.probes, 50) * 1000 for r in results]
        p99 = [percentile(r.probes, 99) * 1000 for r in results]
        worst = [max(r.probes, default=float("nan")) * 1000 for r in results]
        n = sum(len(r.probes) for r in results)
        failed: Counter[str] = Counter()
        for r in results:
            failed.update(r.probe_failures)
        took = [h.seconds for r in results for h in r.hostile]
        answered = Counter(_short(h.reply) for r in results for h in r.hostile)
        records = [x for r in results for x in r.records]
        name = HOSTILE[kind][0] if kind else "none"
        goal = "" if count != 3 else (" (goal met)" if median(p99) < 1000
                                      else " (**goal missed**)")
        fails = f" (+{sum(failed.values())} failed)" if failed else ""
        rows.append(
            f"| {name} | {count or '–'} | {n}{fails} | {spread(p50)} | {spread(p99)}{goal} | "
            f"{spread(worst)} | "
            f"{(spread(took, '{:.2f}') + f' ({len(took)} sent)') if kind else '–'} | "
            f"{(_replies(answered) + ': ' + verdicts(records)) if kind else '–'} |")
        if failed:
            rows.append(f"|  | | probes not answered 250: {_replies(failed)} | | | | | |")
        probes = step_times([x for r in results for x in r.probe_records])
        slow = slowest_steps([s for r in results for s in r.probe_sent])
        if kind:
            slow += "; " + by_second([t for r in results for t in r.probe_times])
        if kind:
            notes.append(f"- {name}, {count} in progress: {step_times(records)}; "
                         f"meanwhile the probe: {probes}; {slow}")
        else:
            notes.append(f"- the probe alone: {probes}; {slow}")
    return [
        "| hostile message | in progress | probes | probe p50 ms | probe p99 ms | probe max ms "
        "| each hostile message took s | hostile message answered |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
        *rows,
        "",
        "Time in each step (median ms, from the gateway's audit records; the probe's round "
        "trip above minus its \"whole message\" here is time spent before the end of DATA: "
        "connecting, the SMTP dialogue, reading the lines):",
        "",
        *notes,
    ]


# ---------------------------------------------------------------------------- 3. flood

@dataclass
class FloodRun:
    n_in: int
    n_out: int
    accepted: Counter[str]          # side -> greeted with 220
    refused: Counter[str]           # first line the flooder got, beyond the cap
    refused_ms: list[float]         # how fast a refused connection was answered
    councillor: list[Sent]
    mx_sender: list[Sent]
    councillor_before: list[Sent]
    mx_before: list[Sent]
    recovered_ms: float             # flooder closed its connections -> greeted again


async def _legit(gw: GatewayProcess, rounds: int) -> tuple[list[Sent], list[Sent]]:
    councillor = []
    mx = []
    for i in range(rounds):
        councillor.append(await send(gw.out_port, COUNCILLOR, [RESIDENT],
                                     small_message(i, COUNCILLOR, RESIDENT), local=PROBE_ADDR,
                                     deadline=30))
        mx.append(await send(gw.in_port, "neighbour@example.net", [CLERK],
                             small_message(i, "neighbour@example.net"), local=OTHER_ADDR,
                             deadline=30))
    return councillor, mx


async def _open_idle(port: int) -> tuple[str, float, asyncio.StreamWriter | None]:
    """Connect from the flooder's address and read the first line; keep the connection open
    (the writer) when it was a greeting."""
    t0 = time.perf_counter()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port,
                                                       local_addr=(FLOODER_ADDR, 0))
    except OSError as e:
        return f"connect failed: {e}", (time.perf_counter() - t0) * 1000, None
    try:
        line = await asyncio.wait_for(reader.readline(), 10)
    except (TimeoutError, OSError):
        line = b""
    text = line.decode("utf-8", "replace").rstrip("\r\n") or "(nothing within 10 s)"
    ms = (time.perf_counter() - t0) * 1000
    if text.startswith("220"):
        return text, ms, writer
    writer.close()
    return text, ms, None


async def flood_run(opts: Options, n_in: int, n_out: int, rounds: int, label: str) -> FloodRun:
    async with gateway(opts, label) as gw:
        await warm_up(gw)
        before = await _legit(gw, rounds)
        held: list[asyncio.StreamWriter] = []
        accepted: Counter[str] = Counter()
        refused: Counter[str] = Counter()
        refused_ms: list[float] = []
        for side, port, n in (("MX", gw.in_port, n_in), ("submission", gw.out_port, n_out)):
            # One after another, as a flooder holding its connections open does: each new one
            # sees all the earlier ones counted.
            for _ in range(n):
                text, ms, writer = await _open_idle(port)
                if writer is not None:
                    held.append(writer)
                    accepted[side] += 1
                else:
                    refused[f"{side}: {_short(text)}"] += 1
                    refused_ms.append(ms)
        during = await _legit(gw, rounds)
        for w in held:
            w.close()
        closed = time.perf_counter()
        recovered = float("nan")
        while time.perf_counter() - closed < 10:
            text, _, writer = await _open_idle(gw.in_port)
            if writer is not None:
                writer.write(b"QUIT\r\n")
                writer.close()
                recovered = (time.perf_counter() - closed) * 1000
                break
            await asyncio.sleep(0.005)
    return FloodRun(n_in, n_out, accepted, refused, refused_ms, during[0], during[1],
                    before[0], before[1], recovered)


def _served(sent: list[Sent]) -> str:
    ok = [s.seconds * 1000 for s in sent if s.code == 250]
    bad = Counter(_short(s.reply) for s in sent if s.code != 250)
    text = f"{len(ok)}/{len(sent)}, {median(ok):.0f} ms" if ok else f"0/{len(sent)}"
    return text + (f"; {_replies(bad)}" if bad else "")


async def flood_section(opts: Options, runs: int, rounds: int) -> list[str]:
    caps = per_address_caps(opts)
    levels = [(caps[0], caps[1]), (caps[0] * 5, caps[1] * 5)]
    rows = []
    refusals: Counter[str] = Counter()
    for n_in, n_out in levels:
        results = [await flood_run(opts, n_in, n_out, rounds, f"flood-{n_in}-{run}")
                   for run in range(runs)]
        for r in results:
            refusals.update(r.refused)
            print(f"  flood {n_in}/{n_out}: accepted {dict(r.accepted)}, refused "
                  f"{dict(r.refused)}, councillor {_served(r.councillor)}, MX "
                  f"{_served(r.mx_sender)}, recovered {r.recovered_ms:.0f} ms", file=sys.stderr)
        acc_in = median([r.accepted["MX"] for r in results])
        acc_out = median([r.accepted["submission"] for r in results])
        ref = median([sum(r.refused.values()) for r in results])
        refused_ms = median([x for r in results for x in r.refused_ms])
        rows.append(
            f"| {n_in} MX + {n_out} submission | {acc_in:.0f} + {acc_out:.0f} | {ref:.0f}"
            f"{f', answered in {refused_ms:.1f} ms' if ref else ''}"
            f" | {_served([s for r in results for s in r.councillor_before])} | "
            f"{_served([s for r in results for s in r.councillor])} | "
            f"{_served([s for r in results for s in r.mx_before])} | "
            f"{_served([s for r in results for s in r.mx_sender])} | "
            f"{spread([r.recovered_ms for r in results], '{:.1f}')} |")
    lines = [
        f"Per-address caps in force: MX {caps[0]}, submission {caps[1]} "
        f"(side pools: {caps[2]} each).",
        "",
        "| flooder's idle connections (one address) | kept open | refused | councillor "
        "(submission) before | councillor during | other sender (MX) before | other sender "
        "during | flooder greeted again after closing ms |",
        "|---|---:|---:|---|---|---|---|---:|",
        *rows,
    ]
    if refusals:
        lines += ["", "Replies the flooder got beyond its cap (all runs):", ""]
        lines += [f"- {n} × `{text}`" for text, n in refusals.most_common()]
    return lines


def per_address_caps(opts: Options) -> tuple[int, int, int]:
    """(MX cap, submission cap, side pool) as the gateway reads this benchmark's config; the
    shipped defaults when this gateway version has no such settings."""
    try:
        from gateway.assembly import parse_config
        cfg = parse_config(tomli_w.dumps(gateway_config(
            Path(tempfile.gettempdir()), opts.sink.port, opts.sink.dns_port, opts.clamd_address, 1,
            2)))
        return (int(getattr(cfg.inbound, "max_connections_per_address", 20)),
                int(getattr(cfg.outbound, "max_connections_per_address", 10)),
                int(getattr(cfg.inbound, "max_connections", cfg.gateway.max_connections)))
    except Exception:
        return 20, 10, 100


def inbound_chain(opts: Options) -> str:
    try:
        from gateway.assembly import chain_names, parse_config
        cfg = parse_config(tomli_w.dumps(gateway_config(
            Path(tempfile.gettempdir()), opts.sink.port, opts.sink.dns_port, opts.clamd_address, 1,
            2)))
        return ", ".join(chain_names(cfg, "inbound"))
    except Exception as e:
        return f"? ({e})"


# ---------------------------------------------------------------------------- main

async def main(args: argparse.Namespace) -> int:
    runs = args.runs or (1 if args.quick else 3)
    window = args.window or (2.0 if args.quick else 8.0)
    rounds = 3 if args.quick else 5
    only = set(args.only.split(",")) if args.only else {"memory", "latency", "flood"}
    unknown = only - {"memory", "latency", "flood"}
    if unknown:
        print(f"--only: unknown part(s) {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    sink = Sink()
    sink.start()
    started = time.perf_counter()
    try:
        with bench_clamd(max_message_size=25 * MIB) as clamd:
            opts = Options(clamd.tcp_address, sink, args.py_spy, args.memray, args.verbose,
                           args.py_spy_gil)
            print(f"command: {shlex.join(['python', '-m', 'bench.hostile', *sys.argv[1:]])}")
            print(f"machine: {os.cpu_count()} CPUs ({cpu_model()}), {platform.system()} "
                  f"{platform.release()}, Python {platform.python_version()}, aiosmtpd "
                  f"{package_version('aiosmtpd')}, aiosmtplib {package_version('aiosmtplib')}, "
                  f"{clamd_version()}; revision {revision()}")
            signatures = ("test signatures only" if clamd.test_signatures_only
                          else "its database")
            print(f"gateway: own process (python -m gateway run), inbound chain: "
                  f"{inbound_chain(opts)}; junk tagged, not held; DNS fails at once (SERVFAIL); "
                  f"clamd with {signatures}")
            print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
                  f"(other work on the machine skews the timings; memory is not affected)")
            print(f"runs per case: {runs} (median shown, range in brackets); "
                  f"latency window {window:g} s, probe every {PROBE_INTERVAL * 1000:.0f} ms")
            if "memory" in only:
                print("\n### Peak memory of the gateway process\n")
                print("\n".join(await memory_section(opts, runs)), flush=True)
            if "latency" in only:
                print("\n### A small message's round trip while hostile messages run\n")
                print("\n".join(await latency_section(opts, runs, window, args.case)), flush=True)
            if "flood" in only:
                print("\n### Connection flood from one address\n")
                print("\n".join(await flood_section(opts, runs, rounds)), flush=True)
    finally:
        sink.stop()
    print(f"\nsink received {sink.received} messages ({sink.bytes / MIB:.0f} MiB), "
          f"{sink.without_trace} without the trace header; took "
          f"{time.perf_counter() - started:.0f} s; load average after: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.hostile",
        description=(__doc__ or "").split("\n\n")[0],
        epilog="Measures peak memory per message, a small message's latency while hostile MIME "
               "is processed, and recovery from a connection flood; prints markdown tables.")
    p.add_argument("--quick", action="store_true",
                   help="one run of each case and a 2 s latency window (under 2 minutes)")
    p.add_argument("--runs", type=int, default=0,
                   help="runs of each case, median reported (default 3; 1 with --quick)")
    p.add_argument("--window", type=float, default=0.0,
                   help="seconds the hostile senders keep sending in each latency case "
                        "(default 8; 2 with --quick)")
    p.add_argument("--only", default="",
                   help="comma-separated parts to run: memory, latency, flood (default all)")
    p.add_argument("--case", default="",
                   help="with the latency part: comma-separated cases to run, a hostile kind "
                        f"({', '.join(['none', *HOSTILE])}) with an optional ':COUNT' "
                        "(1 or 3), e.g. parts:3,html:3 (default all)")
    p.add_argument("--py-spy", type=Path, metavar="DIR",
                   help="attach py-spy (on PATH) to every gateway; raw stacks go to DIR")
    p.add_argument("--py-spy-gil", action="store_true",
                   help="with --py-spy: sample only the thread holding the GIL (who keeps the "
                        "event loop waiting)")
    p.add_argument("--memray", type=Path, metavar="DIR",
                   help="run every gateway under memray (importable by this Python); "
                        "captures go to DIR (RSS figures then include memray's own)")
    p.add_argument("-v", "--verbose", action="store_true", help="say where each gateway runs")
    return p.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
