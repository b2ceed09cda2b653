"""pyclamd (in a thread, as it blocks) against the project's asyncio INSTREAM client.

Scans a clean 50 KB and a 10 MB message with a real clamd, several times each, and reports the
median time per scan and the longest the event loop was held up while scans ran. Figures go to
docs/benchmarks.md.

    python -m bench.clamd_clients
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable

import pyclamd

from bench._clamd import bench_clamd
from gateway.adapters.clamd import ClamdClient, Outcome, parse_address

ROUNDS = 15


def payload(size: int) -> bytes:
    # Base64-like text, as attachments travel in mail; random so nothing compresses or caches.
    import base64

    return base64.encodebytes(os.urandom(size * 3 // 4))[:size]


async def measure(scan: Callable[[bytes], Awaitable[bool]], size: int) -> tuple[float, float]:
    """(median seconds per scan, worst event-loop lag in seconds) over ROUNDS scans.

    Each round scans new random content: clamd remembers the hashes of clean files, and
    scanning the same bytes again would measure its cache."""
    lag = 0.0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal lag
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            before = loop.time()
            await asyncio.sleep(0.001)
            lag = max(lag, loop.time() - before - 0.001)

    datas = [payload(size) for _ in range(ROUNDS)]  # made before the loop-lag ticker starts
    tick = asyncio.create_task(ticker())
    times = []
    for data in datas:
        started = time.perf_counter()
        assert await scan(data), "scan failed"
        times.append(time.perf_counter() - started)
    stop.set()
    await tick
    return statistics.median(times), lag


async def main() -> None:
    with bench_clamd() as setup:
        client = ClamdClient([parse_address(setup.tcp_address)], 60)

        async def ours(data: bytes) -> bool:
            return (await client.scan(data)).outcome is Outcome.CLEAN

        def pyclamd_scan(data: bytes, chunk: int) -> bool:
            cd = pyclamd.ClamdNetworkSocket("127.0.0.1", setup.tcp_port, timeout=60)
            return cd.scan_stream(data, chunk_size=chunk) is None

        def threaded(chunk: int) -> Callable[[bytes], Awaitable[bool]]:
            async def scan(data: bytes) -> bool:
                return await asyncio.to_thread(pyclamd_scan, data, chunk)
            return scan

        clients = [
            ("asyncio client, 64 KiB chunks, drain awaited", ours),
            ("pyclamd 0.4.0 in a thread, 4 KiB chunks (its default)", threaded(4096)),
            ("pyclamd 0.4.0 in a thread, 64 KiB chunks", threaded(65536)),
        ]
        print(f"clamd {setup.tcp_address}; median of {ROUNDS} scans of a clean message")
        print(f"{'client':58} {'50 KB':>9} {'10 MB':>9} {'loop lag':>9}")
        for label, scan in clients:
            small, lag1 = await measure(scan, 50_000)
            large, lag2 = await measure(scan, 10_000_000)
            print(f"{label:58} {small * 1000:7.1f}ms {large * 1000:7.1f}ms "
                  f"{max(lag1, lag2) * 1000:7.1f}ms")


if __name__ == "__main__":
    asyncio.run(main())
