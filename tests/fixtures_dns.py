"""A real DNS server on loopback (UDP and TCP), built on dnspython's message API.

Tests publish the SPF, DKIM and DMARC records they need with ``dns_server.add(...)``; nothing is
ever asked of a resolver beyond 127.0.0.1. ``silent_dns`` is a server that reads queries and
never answers (for DNS timeouts).
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from collections.abc import Iterator

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest

__all__ = ["DnsServer", "SilentDns"]


def _txt(value: str) -> str:
    chunks = [value[i:i + 250] for i in range(0, len(value), 250)] or [""]
    return " ".join('"' + c.replace("\\", "\\\\").replace('"', '\\"') + '"' for c in chunks)


class DnsServer:
    """Answers from an in-memory table; runs its own event loop in a thread."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, str], list[str]] = {}
        self.queries: list[tuple[str, str]] = []
        self.failing: set[str] = set()  # names answered with SERVFAIL
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="test-dns", daemon=True)
        self.port = 0

    # -- records ---------------------------------------------------------------------------
    @staticmethod
    def _key(name: str, rtype: str) -> tuple[str, str]:
        return name.lower().rstrip(".") + ".", rtype.upper()

    def add(self, name: str, rtype: str, value: str) -> None:
        with self._lock:
            self.records.setdefault(self._key(name, rtype), []).append(value)

    def remove(self, name: str) -> None:
        prefix = name.lower().rstrip(".") + "."
        with self._lock:
            for key in [k for k in self.records if k[0] == prefix]:
                del self.records[key]

    def fail(self, name: str, failing: bool = True) -> None:
        """Answer SERVFAIL for ``name`` (as a broken zone does), or stop doing so."""
        with self._lock:
            (self.failing.add if failing else self.failing.discard)(self._key(name, "")[0])

    def clear(self) -> None:
        with self._lock:
            self.records.clear()
            self.queries.clear()
            self.failing.clear()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    # -- serving ---------------------------------------------------------------------------
    def answer(self, wire: bytes) -> bytes | None:
        try:
            query = dns.message.from_wire(wire)
        except Exception:
            return None
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        with self._lock:
            for q in query.question:
                name = q.name.to_text().lower()
                rtype = dns.rdatatype.to_text(q.rdtype)
                self.queries.append((name, rtype))
                values = self.records.get((name, rtype))
                if name in self.failing:
                    response.set_rcode(dns.rcode.SERVFAIL)
                elif values:
                    texts = [_txt(v) if rtype == "TXT" else v for v in values]
                    response.answer.append(dns.rrset.from_text_list(
                        q.name, 60, dns.rdataclass.IN, q.rdtype, texts))
                elif not any(k[0] == name for k in self.records):
                    response.set_rcode(dns.rcode.NXDOMAIN)
        return response.to_wire()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self

        class Udp(asyncio.DatagramProtocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.transport = transport

            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                reply = server.answer(data)
                if reply is not None:
                    self.transport.sendto(reply, addr)  # type: ignore[attr-defined]

        async def tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while True:
                    size = struct.unpack("!H", await reader.readexactly(2))[0]
                    reply = server.answer(await reader.readexactly(size))
                    if reply is None:
                        break
                    writer.write(struct.pack("!H", len(reply)) + reply)
                    await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        async def start() -> None:
            # A free UDP port may be taken for TCP by another program: then try another.
            for _ in range(50):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sock.bind(("127.0.0.1", 0))
                port = sock.getsockname()[1]
                try:
                    self._tcp = await asyncio.start_server(tcp, "127.0.0.1", port)
                except OSError:
                    sock.close()
                    continue
                self.port = port
                await self._loop.create_datagram_endpoint(Udp, sock=sock)
                self._ready.set()
                return

        self._loop.run_until_complete(start())
        self._loop.run_forever()

    def start(self) -> DnsServer:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("test DNS server did not start")
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


class SilentDns:
    """Reads queries on UDP and TCP and never answers: every lookup times out."""

    def __init__(self) -> None:
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.port = self.udp.getsockname()[1]
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.bind(("127.0.0.1", self.port))
        self.tcp.listen(16)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def close(self) -> None:
        self.udp.close()
        self.tcp.close()


@pytest.fixture(scope="session")
def dns_server_session() -> Iterator[DnsServer]:
    server = DnsServer().start()
    yield server
    server.stop()


@pytest.fixture
def dns_server(dns_server_session: DnsServer) -> Iterator[DnsServer]:
    """The loopback DNS server, emptied before and after each test."""
    dns_server_session.clear()
    yield dns_server_session
    dns_server_session.clear()


@pytest.fixture(scope="session")
def silent_dns() -> Iterator[SilentDns]:
    server = SilentDns()
    yield server
    server.close()
