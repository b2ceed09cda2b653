"""Serving ``/metrics`` and ``/health`` on the event loop: a tiny HTTP responder.

Why not prometheus_client's own server: it is a blocking thread server, and its ASGI app under
uvicorn would bring a second web stack for two fixed answers. Here one ``asyncio`` server reads
a request head (bounded in size and time), answers, and closes the connection. The text
exposition is built in a thread (it counts the quarantine); ``/health`` probes run under
deadlines, and requests that arrive while a probe is under way share its answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from gateway.metrics.health import problems
from gateway.metrics.registry import CONTENT_TYPE, SIDES
from gateway.metrics.settings import MetricsConfig

if TYPE_CHECKING:
    from gateway.smtp.server import Gateway

__all__ = ["metrics_job", "running_metrics"]

log = logging.getLogger(__name__)

MAX_HEAD = 8192  # request line and headers; Prometheus and urllib send a few hundred bytes
REQUEST_SECONDS = 5.0  # to send the request head; then the answer has this long to go out
MAX_CLIENTS = 16  # at once; more are closed at once (scrapers and health checks are few)
TEXT = "text/plain; charset=utf-8"
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
           500: "Internal Server Error", 503: "Service Unavailable"}


def _response(status: int, body: bytes, content_type: str = TEXT, *, head: bool = False,
              extra: str = "") -> bytes:
    lines = (f"HTTP/1.1 {status} {REASONS[status]}\r\nContent-Type: {content_type}\r\n"
             f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\n{extra}"
             "Connection: close\r\n\r\n")
    return lines.encode("ascii") + (b"" if head else body)


class _Responder:
    """Answers the requests of one listener; knows the gateway it reports on."""

    def __init__(self, gateway: Gateway):
        self.gateway = gateway
        self.clients: set[asyncio.Task[None]] = set()
        self._probe: asyncio.Task[list[str]] | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        try:
            if task is None or len(self.clients) >= MAX_CLIENTS:
                return
            self.clients.add(task)
            try:
                async with asyncio.timeout(REQUEST_SECONDS):
                    head = await reader.readuntil(b"\r\n\r\n")
            except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                    ConnectionError):
                return
            answer = await self._answer(head)
            async with asyncio.timeout(REQUEST_SECONDS):
                writer.write(answer)
                await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            if task is not None:
                self.clients.discard(task)
            writer.close()
            with contextlib.suppress(OSError, asyncio.CancelledError):
                await writer.wait_closed()

    async def _answer(self, head: bytes) -> bytes:
        parts = head.split(b"\r\n", 1)[0].decode("latin-1").split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            return _response(400, b"not an HTTP/1 request\n")
        method, target = parts[0], parts[1]
        is_head = method == "HEAD"
        if method not in ("GET", "HEAD"):
            return _response(405, b"only GET and HEAD\n", extra="Allow: GET, HEAD\r\n")
        path = urlsplit(target).path
        if path == "/metrics":
            try:
                body = await self._metrics()
            except Exception:
                log.exception("metrics: the exposition failed")
                return _response(500, b"the metrics could not be gathered\n", head=is_head)
            return _response(200, body, CONTENT_TYPE, head=is_head)
        if path == "/health":
            try:
                found = await self._health()
            except Exception as e:
                log.exception("metrics: the health check failed")
                found = [f"the health check itself failed: {e!r}"]
            if found:
                return _response(503, ("\n".join(found) + "\n").encode(), head=is_head)
            return _response(200, b"ok\n", head=is_head)
        return _response(404, b"try /metrics or /health\n", head=is_head)

    async def _metrics(self) -> bytes:
        gw = self.gateway
        # Read on the loop, where they change; the rest is built in a thread.
        for side in SIDES:
            gw.metrics.connections_open.labels(side).set(gw.connections(side))
        gw.metrics.in_flight.set(gw.in_flight)
        return await asyncio.to_thread(gw.metrics.exposition)

    async def _health(self) -> list[str]:
        if self._probe is None or self._probe.done():
            self._probe = asyncio.get_running_loop().create_task(
                problems(self.gateway.assembly))
        # Shielded: a client that goes away does not cancel the probe others wait on.
        return await asyncio.shield(self._probe)

    async def close(self) -> None:
        pending = [*self.clients, *([self._probe] if self._probe else [])]
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


@contextlib.asynccontextmanager
async def running_metrics(gateway: Gateway, host: str,
                          port: int) -> AsyncIterator[asyncio.Server]:
    """Serve ``/metrics`` and ``/health`` about ``gateway`` until the block ends."""
    responder = _Responder(gateway)
    server = await asyncio.start_server(responder.handle, host, port, limit=MAX_HEAD)
    try:
        yield server
    finally:
        server.close()
        await responder.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2):
                await server.wait_closed()


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host.lower() == "localhost"


async def metrics_job(gateway: Gateway) -> None:
    """For ``run``: serve when ``[metrics] listen`` is set. The bound port is put in
    ``gateway.ports["metrics"]`` (``listen = "127.0.0.1:0"`` picks a free one)."""
    cfg = gateway.config.section(MetricsConfig)
    if cfg.listen is None:
        return
    host, port = cfg.listen
    try:
        async with running_metrics(gateway, host, port) as server:
            bound = int(server.sockets[0].getsockname()[1])
            gateway.ports["metrics"] = bound
            log.info("metrics listening on %s:%d (/metrics, /health)", host, bound)
            if not _loopback(host):
                log.warning("metrics: %s:%d can be reached from other machines and asks no "
                            "password; let only the monitoring server reach it", host, bound)
            await asyncio.Event().wait()  # until run cancels this job
    except OSError as e:
        log.error("metrics could not listen on %s:%d: %s", host, port, e)
    finally:
        gateway.ports.pop("metrics", None)
