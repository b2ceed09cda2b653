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
   parts, (b) one 3.8 MB HTML part, (c) a multipart nested 1,000 deep, (d) a text part of
   4 MB of lines that begin with "--" as a boundary does. Goal: p99 under 1 s with three
   running.
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
import os
import platform
import shlex
import sys
import time
from pathlib import Path

from bench._clamd import bench_clamd
from bench._rig import (
    MIB,
    Options,
    Sink,
    clamd_version,
    cpu_model,
    package_version,
    revision,
)
from bench.hostile_flood import (
    flood_section,
    inbound_chain,
)
from bench.hostile_latency import (
    latency_section,
)
from bench.hostile_mail import (
    HOSTILE,
    PROBE_INTERVAL,
)
from bench.hostile_memory import (
    memory_section,
)

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

