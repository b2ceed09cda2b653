"""Shared fixtures: a recording SMTP sink, a config builder and a running gateway.

Everything here is real: the sink is an aiosmtpd server on loopback, the gateway listens on real
sockets, and clients talk to it with smtplib or aiosmtplib.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from aiosmtpd.smtp import SMTP as AioSMTP

from gateway.assembly import load_config
from gateway.config import Config
from gateway.delivery import nexthop
from gateway.smtp.server import Gateway

pytest_plugins: list[str] = ["tests.fixtures_clamd", "tests.fixtures_dns"]


@pytest.fixture(autouse=True)
def fresh_capabilities(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a next hop offers is remembered per host and port for five minutes, process-wide;
    each test asks its own next hops afresh (another test's next hop may have had the port)."""
    monkeypatch.setattr(nexthop, "_capabilities", {})


# ---------------------------------------------------------------------- recording SMTP sink

@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes


@dataclass
class SinkHandler:
    messages: list[Received] = field(default_factory=list)
    refuse_rcpt: set[str] = field(default_factory=set)
    data_reply: str | None = None  # e.g. "452 4.3.1 Insufficient storage" to refuse DATA
    arrived: asyncio.Condition | None = None

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          options: list[str]) -> str:
        if address in self.refuse_rcpt:
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_reply:
            return self.data_reply
        mail_from = "" if envelope.mail_from == "<>" else envelope.mail_from
        self.messages.append(Received(mail_from, list(envelope.rcpt_tos),
                                      envelope.original_content))
        assert self.arrived is not None
        async with self.arrived:
            self.arrived.notify_all()
        return "250 2.0.0 Stored in the mailbox"


class _CountingSMTP(AioSMTP):
    """The sink's protocol, counting its open connections (so tests can see leaks)."""

    def __init__(self, sink: SmtpSink, **kwargs: Any):
        super().__init__(sink.handler, **kwargs)
        self.sink = sink

    def connection_made(self, transport: Any) -> None:
        if self._original_transport is None:  # not the STARTTLS upgrade
            self.sink.connections += 1
            self.sink.opened += 1
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        super().connection_lost(error)
        self.sink.connections -= 1
        self.sink.changed.set()


class SmtpSink:
    def __init__(self, *, port: int = 0, **smtp_options: Any) -> None:
        self.handler = SinkHandler()
        self.host = "127.0.0.1"
        self.port = port  # 0: any free one
        self.connections = 0  # open now
        self.opened = 0  # ever
        self.changed = asyncio.Event()
        self.smtp_options = {"enable_SMTPUTF8": True, "hostname": "sink.test", **smtp_options}
        self._server: asyncio.base_events.Server | None = None

    @property
    def messages(self) -> list[Received]:
        return self.handler.messages

    @property
    def refuse_rcpt(self) -> set[str]:
        return self.handler.refuse_rcpt

    async def start(self) -> None:
        self.handler.arrived = asyncio.Condition()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _CountingSMTP(self, **self.smtp_options), host=self.host, port=self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def wait_for(self, n: int, deadline: float = 10.0) -> list[Received]:
        """Wait until at least ``n`` messages arrived (a deadline, not a sleep)."""
        assert self.handler.arrived is not None
        async with asyncio.timeout(deadline):
            async with self.handler.arrived:
                await self.handler.arrived.wait_for(lambda: len(self.messages) >= n)
        return self.messages

    async def settle(self, deadline: float = 10.0) -> int:
        """Wait until no connection is open any more (a deadline, not a sleep); returns how
        many are still open when it passes."""
        try:
            async with asyncio.timeout(deadline):
                while self.connections:
                    self.changed.clear()
                    await self.changed.wait()
        except TimeoutError:
            pass
        return self.connections

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"


@pytest.fixture
async def smtp_sink() -> AsyncIterator[SmtpSink]:
    sink = SmtpSink()
    await sink.start()
    yield sink
    await sink.stop()


# ---------------------------------------------------------------------- config builder

def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def base_config(tmp_path: Path) -> dict[str, Any]:
    """A config for tests: free ports, everything under tmp_path, only the trace filter."""
    return {
        "gateway": {
            "council_domains": ["stanion-pc.gov.uk"],
            "hostname": "gw.stanion-pc.gov.uk",
            "max_message_size": "1MiB",
            "audit_log": str(tmp_path / "logs" / "audit.jsonl"),
            "auth_failure_delay": 0.05,
            "shutdown_grace": 5,
        },
        "inbound": {
            "listen": "127.0.0.1:0",
            "deliver_to": f"maildir:{tmp_path / 'mailbox'}",
            "filters": ["trace"],
        },
        "outbound": {
            "listen": "127.0.0.1:0",
            "deliver_to": f"maildir:{tmp_path / 'outbox'}",
            "filters": ["trace"],
            "trusted_networks": ["127.0.0.0/8"],
            "users_file": str(tmp_path / "users"),
            "login_locks_file": str(tmp_path / "state" / "login-locks.json"),
        },
        "quarantine": {"path": str(tmp_path / "quarantine")},
        # Nothing a test learns or blocks may land in the project's own config/ folder.
        "senders": {
            "file": str(tmp_path / "known-senders.txt"),
            "learned_file": str(tmp_path / "learned-senders.txt"),
            "blocked_file": str(tmp_path / "blocked-senders.txt"),
        },
        # Never the machine's resolver: tests that need DNS point this at the loopback server.
        "dns": {"nameservers": ["127.0.0.1:9"], "timeout": 0.5},
    }


def write_config(tmp_path: Path, overrides: dict[str, Any] | None = None,
                 name: str = "gateway.toml") -> Path:
    data = _merge(base_config(tmp_path), overrides or {})
    path = tmp_path / name
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    return path


def build_config(tmp_path: Path, overrides: dict[str, Any] | None = None) -> Config:
    """Deep-merge ``overrides`` over the test base config, write it as TOML, load it."""
    return load_config(write_config(tmp_path, overrides))


@contextlib.asynccontextmanager
async def running_gateway(config: Config) -> AsyncIterator[Gateway]:
    gw = Gateway(config)
    await gw.start()
    try:
        yield gw
    finally:
        await gw.stop(grace=5)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if asyncio.iscoroutinefunction(getattr(item, "function", None)):
            # First set up, so last torn down: after the test's own fixtures cleaned up.
            item.fixturenames.insert(0, "no_tasks_left_behind")  # type: ignore[attr-defined]


@pytest.fixture
async def no_tasks_left_behind() -> AsyncIterator[None]:
    """Fails a test that leaves asyncio tasks running (a leaked connection or job)."""
    before = asyncio.all_tasks()
    yield
    current = asyncio.current_task()
    leftover = [t for t in asyncio.all_tasks() - before if t is not current and not t.done()]
    for _ in range(20):  # let closing connections finish their last callbacks
        if not leftover:
            break
        await asyncio.sleep(0)
        leftover = [t for t in leftover if not t.done()]
    if leftover:
        for t in leftover:
            t.cancel()
        pytest.fail(f"test left {len(leftover)} task(s) running: {leftover[:3]}")
