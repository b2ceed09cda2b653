"""A real clamd (Debian's clamav-daemon) for the tests, started the way scripts/start-clamd does.

``clamd`` is one daemon for the whole session, on a free loopback TCP port and a unix socket,
loaded with the project's test signatures; ``own_clamd`` is a separate daemon for one test that
kills and restarts it; ``fake_clamd`` serves a handler of the test's own, only to inject faults.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway_ops.clamd import ClamdSetup, prepare, start, stop_process

__all__ = ["ClamdInstance", "FakeClamd", "FakeHandler", "TEST_MAX_MESSAGE_SIZE", "clamd",
           "fake_clamd", "free_port", "own_clamd"]

# The gateway size the test clamd is configured for: StreamMaxLength becomes 3M, MaxFileSize 3M
# and MaxScanSize 12M, small enough for the limit tests to stay quick.
TEST_MAX_MESSAGE_SIZE = 2 * 1024 * 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ClamdInstance:
    setup: ClamdSetup
    proc: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return self.setup.tcp_address

    @property
    def unix_address(self) -> str:
        return self.setup.unix_address

    def start(self) -> None:
        self.proc = start(self.setup, foreground=True, wait=60)

    def kill(self) -> None:
        """SIGKILL, as when clamd crashes or is killed by the OOM killer."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)


def _instance(run_dir: Path) -> ClamdInstance:
    setup = prepare(run_dir, tcp_port=free_port(), max_message_size=TEST_MAX_MESSAGE_SIZE,
                    test_signatures=True)
    inst = ClamdInstance(setup)
    inst.start()
    return inst


@pytest.fixture(scope="session")
def clamd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClamdInstance]:
    inst = _instance(tmp_path_factory.mktemp("clamd"))
    yield inst
    inst.stop()


@pytest.fixture
def own_clamd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClamdInstance]:
    inst = _instance(tmp_path_factory.mktemp("own-clamd"))
    yield inst
    inst.stop()


FakeHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
FakeClamd = Callable[[FakeHandler], Awaitable[str]]


@pytest.fixture
async def fake_clamd() -> AsyncIterator[FakeClamd]:
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
