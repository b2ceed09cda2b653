"""The hostile-sender benchmark's second part: a small message's round trip while hostile
messages are in progress (see bench/hostile.py)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench._rig import (
    CLERK,
    RESIDENT,
    Options,
    gateway,
    median,
    percentile,
    spread,
)
from bench.hostile_mail import (
    HOSTILE,
    HOSTILE_TIMEOUT,
    OTHER_ADDR,
    PROBE_ADDRS,
    PROBE_IN_FLIGHT,
    PROBE_INTERVAL,
    Sent,
    reply_counts,
    send,
    short_reply,
    small_message,
    step_times,
    verdicts,
    warm_up,
)

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
    failures = Counter(short_reply(r.reply) for _, r in inside if r.code != 250)
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
                  f"{Counter(short_reply(h.reply)[:50] for h in r.hostile)}", file=sys.stderr)
        p50 = [percentile(r.probes, 50) * 1000 for r in results]
        p99 = [percentile(r.probes, 99) * 1000 for r in results]
        worst = [max(r.probes, default=float("nan")) * 1000 for r in results]
        n = sum(len(r.probes) for r in results)
        failed: Counter[str] = Counter()
        for r in results:
            failed.update(r.probe_failures)
        took = [h.seconds for r in results for h in r.hostile]
        answered = Counter(short_reply(h.reply) for r in results for h in r.hostile)
        records = [x for r in results for x in r.records]
        name = HOSTILE[kind][0] if kind else "none"
        goal = "" if count != 3 else (" (goal met)" if median(p99) < 1000
                                      else " (**goal missed**)")
        fails = f" (+{sum(failed.values())} failed)" if failed else ""
        rows.append(
            f"| {name} | {count or '–'} | {n}{fails} | {spread(p50)} | {spread(p99)}{goal} | "
            f"{spread(worst)} | "
            f"{(spread(took, '{:.2f}') + f' ({len(took)} sent)') if kind else '–'} | "
            f"{(reply_counts(answered) + ': ' + verdicts(records)) if kind else '–'} |")
        if failed:
            rows.append(f"|  | | probes not answered 250: {reply_counts(failed)} | | | | | |")
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


