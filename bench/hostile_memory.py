"""The hostile-sender benchmark's first part: peak memory per message in flight (see
bench/hostile.py)."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from bench._rig import (
    CLERK,
    MIB,
    RESIDENT,
    Options,
    gateway,
    median,
    spread,
)
from bench.hostile_mail import (
    OTHER_ADDR,
    realistic_message,
    reply_counts,
    send,
    short_reply,
    step_times,
    verdicts,
    warm_up,
)

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
        replies = Counter(short_reply(x) for r in results for x in r.replies)
        records = [x for r in results for x in r.records]
        name = f"{'one' if count == 1 else 'four concurrent'} × {mib} MiB"
        rows.append(
            f"| {name} | {median([r.baseline / MIB for r in results]):.0f} | {spread(above)} | "
            f"{median(ratio):.1f} × | {'yes' if median(ratio) <= 3 else '**no**'} | "
            f"{spread([r.seconds for r in results], '{:.1f}')} | {reply_counts(replies)}: "
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
