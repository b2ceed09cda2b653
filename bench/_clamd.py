"""A throw-away clamd for the benchmarks (project test signatures, free loopback port)."""

from __future__ import annotations

import contextlib
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

from gateway_ops.clamd import ClamdSetup, prepare, start, stop_process

__all__ = ["bench_clamd"]


@contextlib.contextmanager
def bench_clamd(max_message_size: int = 25 * 1024 * 1024) -> Iterator[ClamdSetup]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory(prefix="bench-clamd-") as tmp:
        setup = prepare(Path(tmp), tcp_port=port, max_message_size=max_message_size,
                        test_signatures=True)
        proc = start(setup, foreground=True, wait=60)
        try:
            yield setup
        finally:
            stop_process(proc)
