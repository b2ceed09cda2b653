"""Side by side with Haraka: the whole chain against a virus-scanning relay, in one run.

Everything runs in one process tree on loopback, with the same clamd (project test signatures,
``bench/_clamd.py``), the same recording SMTP sink (a thread of this process, with the DNS stub
that answers SERVFAIL at once beside it, ``bench/_rig.py``) and the same messages: N messages,
80 % a 5 KB text and 20 % the same with a 45 KB PDF attachment (random bytes, base64), each with
a body of its own so clamd's cache of clean files never helps. C client connections each send
one message after another (MAIL, RCPT, DATA on a kept connection). The targets, in this order:

1. **clamd INSTREAM alone**: the project's clamd client scans each message, C at a time
   (what the scan costs, without SMTP);
2. **direct to the sink**: the clients talk straight to the sink;
3. **Haraka** (npm, installed by this script into ``build/haraka`` when missing, never by the
   tests) with ``rcpt_to.in_host_list``, ``clamd`` and ``queue/smtp_forward`` to the sink, one
   process (no ``nodes``: the gateway is one process too), log level warn;
4. **the gateway, antivirus only** (inbound filters ``antivirus, trace``), its own process;
5. **the gateway, default inbound chain** (antivirus, attachments, junk, confidential, trace;
   junk tagged rather than held, DNS failing at once), its own process;
6. with ``--baseline DIR``, each gateway target once more from the source tree DIR (an earlier
   revision), right after this tree's, so before and after see the same machine.

Each relay first gets the EICAR test string (it must refuse it, or its scanner is not in the
path) and C warm-up messages; then its resident-set high-water mark is reset and the N messages
are timed. Printed: messages a second, p50/p99 of each transaction (MAIL to the end-of-DATA
reply) and what the relay adds to the direct send's, peak memory (``VmHWM``) of the relay's
process, and the ratios to Haraka. The sink must have every message (through the gateway with
its trace header), or the run stops with an error.

    python -m bench.peer                     # 400 messages, 8 connections, one run
    python -m bench.peer --runs 3            # median (range) of three runs
    python -m bench.peer --rate 50           # then latency at 50 messages a second offered
    python -m bench.peer --runs 3 --baseline /tmp/base   # beside an earlier revision's gateway
    python -m bench.peer --only gateway-default --py-spy /tmp/spy   # where the gateway's time goes

Run from the repository root. Linux only (``/proc``). Figures go to docs/benchmarks.md ("Side by
side with Haraka"). Not part of the test suite: speed is measured here, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import platform
import shlex
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

from bench._clamd import bench_clamd
from bench._haraka import HARAKA_DIR, haraka, install_haraka
from bench._rig import (
    CLERK,
    MIB,
    RESIDENT,
    Options,
    Sink,
    clamd_version,
    cpu_model,
    cpu_seconds,
    gateway,
    median,
    package_version,
    percentile,
    proc_status,
    read_reply,
    revision,
    spread,
    wire,
)
from gateway.adapters.clamd import ClamdClient, Outcome, parse_address

EICAR = (b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*")
TARGETS = ("clamd", "direct", "haraka", "gateway-antivirus", "gateway-antivirus@baseline",
           "gateway-default", "gateway-default@baseline")
LABELS = {
    "clamd": "clamd INSTREAM alone",
    "direct": "direct to the sink",
    "haraka": "Haraka {version}, clamd + smtp_forward",
    "gateway-antivirus": "gateway, antivirus only",
    "gateway-default": "gateway, default inbound chain",
    "gateway-antivirus@baseline": "baseline gateway, antivirus only",
    "gateway-default@baseline": "baseline gateway, default inbound chain",
}
GATEWAY_FILTERS = {"gateway-antivirus": ["antivirus", "trace"], "gateway-default": None}
LINE = ("The parish council meets on the first Tuesday of the month in the village hall; the "
        "minutes of the last meeting and the footpath survey are attached for residents.\n")


# ---------------------------------------------------------------------------- messages

def message(i: int, attachment: bool) -> bytes:
    """About 5 KB of text (one line of its own, so no two bodies are alike), and with
    ``attachment`` a 45 KB base64 PDF of random bytes."""
    msg = EmailMessage()
    msg["From"] = f"Pat Resident <{RESIDENT}>"
    msg["To"] = CLERK
    msg["Subject"] = f"Village hall meeting, note {i}"
    msg["Date"] = "Mon, 23 Nov 2026 10:00:00 +0000"
    msg["Message-ID"] = make_msgid(domain="example.org")
    own = base64.b32encode(os.urandom(30)).decode()
    msg.set_content(f"Reference {own}\n" + LINE * (5000 // len(LINE)))
    if attachment:
        pdf = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + os.urandom(45_000 * 3 // 4 - 16)
        msg.add_attachment(pdf, maintype="application", subtype="pdf", filename="minutes.pdf")
    return wire(msg.as_bytes(policy=msg.policy.clone(linesep="\r\n")))


def messages(n: int) -> list[bytes]:
    return [message(i, attachment=i % 5 == 4) for i in range(n)]


def virus_message() -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Pat Resident <{RESIDENT}>"
    msg["To"] = CLERK
    msg["Subject"] = "Invoice"
    msg["Message-ID"] = make_msgid(domain="example.org")
    msg.set_content("Please see the attachment.\n")
    msg.add_attachment(EICAR, maintype="application", subtype="octet-stream",
                       filename="invoice.com")
    return wire(msg.as_bytes(policy=msg.policy.clone(linesep="\r\n")))


# ---------------------------------------------------------------------------- the load

@dataclass
class Load:
    seconds: float
    latencies: list[float]              # seconds, MAIL to the end-of-DATA reply
    replies: Counter[str] = field(default_factory=Counter)  # anything but 250, by text


async def send_all(port: int, datas: Sequence[bytes], connections: int,
                   rate: float | None = None) -> Load:
    """``datas`` over ``connections`` kept connections, each sending one after another; with
    ``rate``, message n is not sent before n / ``rate`` seconds from the start, and its latency
    counts from then (time spent waiting for a free connection included)."""
    queue = list(reversed(datas))
    load = Load(0.0, [])
    sent = connected = 0
    started = 0.0
    all_connected = asyncio.Event()  # the clock starts when every connection is greeted

    async def worker() -> None:
        nonlocal sent, connected, started
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            code, text = await read_reply(reader)
            if code != 220:
                raise RuntimeError(f"greeted with {text!r}")
            writer.write(b"EHLO bench.example.org\r\n")
            await read_reply(reader)
            connected += 1
            if connected == connections:
                started = time.perf_counter()
                all_connected.set()
            await all_connected.wait()
            while queue:
                data, due = queue.pop(), started + sent / rate if rate else 0.0
                sent += 1
                if due > time.perf_counter():
                    await asyncio.sleep(due - time.perf_counter())  # the offered load's pace
                t0 = due or time.perf_counter()
                code, text = await _transaction(reader, writer, data)
                load.latencies.append(time.perf_counter() - t0)
                if code != 250:
                    load.replies[text[:90]] += 1
                    writer.write(b"RSET\r\n")
                    await read_reply(reader)
            writer.write(b"QUIT\r\n")
            with contextlib.suppress(ConnectionError):
                await read_reply(reader)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    await asyncio.gather(*(worker() for _ in range(connections)))
    load.seconds = time.perf_counter() - started
    return load


async def _transaction(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                       data: bytes) -> tuple[int, str]:
    for command, want in ((f"MAIL FROM:<{RESIDENT}>\r\n".encode(), 250),
                          (f"RCPT TO:<{CLERK}>\r\n".encode(), 250), (b"DATA\r\n", 354)):
        writer.write(command)
        code, text = await read_reply(reader)
        if code != want:
            return code, text
    writer.write(data)
    writer.write(b".\r\n")
    await writer.drain()
    return await read_reply(reader)


async def scan_all(clamd_address: str, datas: Sequence[bytes], connections: int) -> Load:
    client = ClamdClient([parse_address(clamd_address)], timeout=30)
    queue = list(reversed(datas))
    load = Load(0.0, [])

    async def worker() -> None:
        while queue:
            data = queue.pop()
            t0 = time.perf_counter()
            reply = await client.scan(data)
            load.latencies.append(time.perf_counter() - t0)
            if reply.outcome is not Outcome.CLEAN:
                load.replies[f"{reply.outcome}: {reply.detail}"[:90]] += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    load.seconds = time.perf_counter() - started
    return load


# ---------------------------------------------------------------------------- one target

@dataclass
class Result:
    rate: float                 # messages a second
    p50: float                  # ms
    p99: float                  # ms
    peak: float | None          # MiB, VmHWM of the relay's process
    cpu: float | None = None    # ms of the relay process's CPU time a message
    paced: tuple[float, float] | None = None  # p50, p99 ms at the --rate pace


def reset_hwm(pid: int) -> None:
    with contextlib.suppress(OSError), open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")


async def relay_run(port: int, pid: int | None, sink: Sink, datas: Sequence[bytes],
                    connections: int, *, scans: bool, traced: bool,
                    rate: float | None = None) -> Result:
    """Check the relay refuses a virus (``scans``), warm it up, then time ``datas``; with
    ``rate``, then as many fresh messages at that pace."""
    if scans:
        load = await send_all(port, [virus_message()], 1)
        if not load.replies or next(iter(load.replies))[:1] != "5":
            raise RuntimeError(f"the relay on port {port} did not refuse the EICAR test message "
                               f"({dict(load.replies) or '250'})")
    warm = await send_all(port, messages(connections), connections)
    if warm.replies:
        raise RuntimeError(f"warm-up answered {dict(warm.replies)}")
    if pid is not None:
        reset_hwm(pid)
    before, untraced = sink.received, sink.without_trace
    cpu_before = cpu_seconds(pid) if pid is not None else 0.0
    load = await send_all(port, datas, connections)
    cpu = (cpu_seconds(pid) - cpu_before) * 1000 / len(datas) if pid is not None else None
    if load.replies:
        raise RuntimeError(f"not every message was accepted: {dict(load.replies)}")
    # Every relay here answers only once the sink has: by now the sink has counted them all.
    if sink.received - before != len(datas):
        raise RuntimeError(f"the sink has {sink.received - before} of {len(datas)} messages")
    if traced and sink.without_trace != untraced:
        raise RuntimeError("a message reached the sink without the gateway's trace header")
    peak = proc_status(pid)["VmHWM"] / MIB if pid is not None else None
    paced = None
    if rate:
        at_pace = await send_all(port, messages(len(datas)), connections, rate)
        if at_pace.replies:
            raise RuntimeError(f"not every paced message was accepted: {dict(at_pace.replies)}")
        paced = (percentile(at_pace.latencies, 50) * 1000,
                 percentile(at_pace.latencies, 99) * 1000)
    return Result(len(datas) / load.seconds, percentile(load.latencies, 50) * 1000,
                  percentile(load.latencies, 99) * 1000, peak, cpu, paced)


async def run_target(name: str, opts: Options, args: argparse.Namespace,
                     datas: Sequence[bytes], run: int) -> Result:
    c = args.connections
    if name == "clamd":
        await scan_all(opts.clamd_address, messages(c), c)
        load = await scan_all(opts.clamd_address, datas, c)
        if load.replies:
            raise RuntimeError(f"clamd did not find every message clean: {dict(load.replies)}")
        return Result(len(datas) / load.seconds, percentile(load.latencies, 50) * 1000,
                      percentile(load.latencies, 99) * 1000, None)
    if name == "direct":
        return await relay_run(opts.sink.port, None, opts.sink, datas, c, scans=False,
                               traced=False, rate=args.rate)
    if name == "haraka":
        async with haraka(args.haraka_dir, opts.sink.port, opts.clamd_address) as hk:
            return await relay_run(hk.port, hk.pid, opts.sink, datas, c, scans=True,
                                   traced=False, rate=args.rate)
    kind, _, baseline = name.partition("@")
    filters = GATEWAY_FILTERS[kind]
    overrides = {"inbound": {"filters": filters}} if filters else None
    if baseline:
        opts = replace(opts, source=args.baseline)
    async with gateway(opts, f"{name}-{run}", overrides) as gw:
        return await relay_run(gw.in_port, gw.pid, opts.sink, datas, c, scans=True,
                               traced=True, rate=args.rate)


# ---------------------------------------------------------------------------- report

def _paired(results: dict[str, list[Result]], name: str, other: str,
            how: Callable[[Result, Result], float]) -> list[float]:
    """``how(run, other's run)`` for each run: figures measured minutes apart are compared
    within their own run, where the machine's other work was about the same."""
    pairs = zip(results.get(name, []), results.get(other, []), strict=False)
    return [how(a, b) for a, b in pairs]


def table(results: dict[str, list[Result]], haraka_label: str) -> list[str]:
    def col(values: Sequence[float | None], fmt: str = "{:.0f}") -> str:
        present = [v for v in values if v is not None]
        return spread(present, fmt) if present else "–"

    lines = ["| target | msg/s | p50 ms | p99 ms | p50 added ms | p99 added ms | peak MiB | "
             "CPU ms/msg | × Haraka |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name in TARGETS:
        if name not in results:
            continue
        rs = results[name]
        relay = name not in ("clamd", "direct")
        added50 = added99 = "–"
        if relay:
            added50 = col(_paired(results, name, "direct", lambda a, b: a.p50 - b.p50), "{:.1f}")
            added99 = col(_paired(results, name, "direct", lambda a, b: a.p99 - b.p99), "{:.1f}")
        ratio = col(_paired(results, name, "haraka", lambda a, b: a.rate / b.rate), "{:.2f}")
        label = LABELS[name].format(version=haraka_label)
        lines.append(f"| {label} | {col([r.rate for r in rs])} | "
                     f"{col([r.p50 for r in rs], '{:.1f}')} | {col([r.p99 for r in rs], '{:.1f}')}"
                     f" | {added50} | {added99} | {col([r.peak for r in rs])} | "
                     f"{col([r.cpu for r in rs], '{:.2f}')} | {ratio} |")
    return lines


def paced_table(results: dict[str, list[Result]], haraka_label: str, rate: float) -> list[str]:
    """Latency at an offered load the relays all keep up with: their own time a message,
    without the queueing of a saturated run."""
    lines = [f"At {rate:g} messages a second offered:", "",
             "| target | p50 ms | p99 ms | p50 added ms | p99 added ms |",
             "|---|---:|---:|---:|---:|"]
    for name in TARGETS:
        rs = [r for r in results.get(name, []) if r.paced]
        if not rs or name == "clamd":
            continue
        added50 = added99 = "–"
        pairs = [(a.paced, b.paced) for a, b in zip(rs, results.get("direct", []), strict=False)
                 if a.paced and b.paced]
        if name != "direct" and pairs:
            added50 = spread([a[0] - b[0] for a, b in pairs], "{:.1f}")
            added99 = spread([a[1] - b[1] for a, b in pairs], "{:.1f}")
        lines.append(f"| {LABELS[name].format(version=haraka_label)} | "
                     f"{spread([r.paced[0] for r in rs if r.paced], '{:.1f}')} | "
                     f"{spread([r.paced[1] for r in rs if r.paced], '{:.1f}')} | "
                     f"{added50} | {added99} |")
    return lines


def goals(results: dict[str, list[Result]]) -> list[str]:
    out = []
    for name, want in (("gateway-default", 1.5), ("gateway-antivirus", 2.0)):
        ratios = _paired(results, name, "haraka", lambda a, b: a.rate / b.rate)
        if ratios:
            got = median(ratios)
            out.append(f"- {LABELS[name]}: {got:.2f} × Haraka (goal ≥ {want} ×): "
                       f"{'met' if got >= want else '**not met**'}")
    for name in ("gateway-antivirus", "gateway-default"):
        added = _paired(results, name, "direct", lambda a, b: a.p99 - b.p99)
        scan99 = [r.p99 for r in results.get("clamd", [])]
        if added and scan99:
            a, s = median(added), median(scan99)
            out.append(f"- {LABELS[name]}: p99 added {a:.1f} ms (goal < 30 ms + the scan's "
                       f"p99 {s:.1f} ms = {30 + s:.1f} ms): "
                       f"{'met' if a < 30 + s else '**not met**'}")
    return out


# ---------------------------------------------------------------------------- main

async def main(args: argparse.Namespace) -> int:
    only = [t for t in TARGETS if (not args.only or t.partition("@")[0] in args.only.split(","))
            and (args.baseline or not t.endswith("@baseline"))]
    unknown = set(args.only.split(",")) - set(TARGETS) if args.only else set()
    if unknown:
        print(f"--only: unknown target(s) {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    haraka_label = install_haraka(args.haraka_dir) if "haraka" in only else ""
    sink = Sink()
    sink.start()
    results: dict[str, list[Result]] = {}
    try:
        with bench_clamd(max_message_size=25 * MIB) as clamd:
            opts = Options(clamd.tcp_address, sink, py_spy=args.py_spy,
                           cprofile=args.cprofile)
            print(f"command: {shlex.join(['python', '-m', 'bench.peer', *sys.argv[1:]])}")
            print(f"machine: {os.cpu_count()} CPUs ({cpu_model()}), {platform.system()} "
                  f"{platform.release()}, Python {platform.python_version()}, node "
                  f"{_node_version()}, aiosmtpd {package_version('aiosmtpd')}, "
                  f"{clamd_version()} (test signatures); revision {revision()}")
            if haraka_label:
                print(f"haraka: {haraka_label}; one process")
            if args.baseline:
                rev = revision(args.baseline)
                print(f"baseline: the gateway from {args.baseline}"
                      f"{f' ({rev})' if rev != '?' else ''}, beside this one in every run")
            datas = messages(args.messages)
            sizes = sorted({len(d) // 1000 for d in datas})
            print(f"messages: {len(datas)} ({', '.join(f'{s} KB' for s in sizes)}) over "
                  f"{args.connections} connections; runs: {args.runs}")
            print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
            for run in range(args.runs):
                for name in only:
                    r = await run_target(name, opts, args, datas, run)
                    results.setdefault(name, []).append(r)
                    print(f"  run {run + 1} {name}: {r.rate:.0f} msg/s, p50 {r.p50:.1f} ms, "
                          f"p99 {r.p99:.1f} ms, peak {r.peak or 0:.0f} MiB", file=sys.stderr)
    finally:
        sink.stop()
    label = haraka_label.split(",")[0].removeprefix("Haraka ")
    print()
    print("\n".join(table(results, label)))
    print()
    print("\n".join(goals(results)))
    if args.rate:
        print()
        print("\n".join(paced_table(results, label, args.rate)))
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


def _node_version() -> str:
    try:
        return subprocess.run(["node", "--version"], capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.peer",
                                description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("-n", "--messages", type=int, default=400, help="messages a target (400)")
    p.add_argument("-c", "--connections", type=int, default=8,
                   help="concurrent client connections (8)")
    p.add_argument("--runs", type=int, default=1, help="runs of every target (1)")
    p.add_argument("--rate", type=float, metavar="R",
                   help="then as many messages again at R a second (latency without queueing)")
    p.add_argument("--only", default="", help=f"comma-separated targets: {', '.join(TARGETS)}")
    p.add_argument("--haraka-dir", type=Path, default=HARAKA_DIR,
                   help="where Haraka is installed from npm (build/haraka; not committed)")
    p.add_argument("--py-spy", type=Path, metavar="DIR",
                   help="attach py-spy (on PATH) to every gateway; raw stacks go to DIR")
    p.add_argument("--baseline", type=Path, metavar="DIR",
                   help="also run the gateway targets from the source tree DIR (an earlier "
                        "revision, e.g. from git archive), interleaved in the same runs")
    p.add_argument("--cprofile", type=Path, metavar="DIR",
                   help="run every gateway under cProfile; its statistics go to DIR")
    return p.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
