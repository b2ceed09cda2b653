"""The two SMTP listeners (inbound MX side, outbound submission side) in one process.

The gateway is a before-queue proxy: see :mod:`gateway.smtp.handler` for what happens to a
message and :mod:`gateway.smtp.protocol` for the SMTP protocol details. The filters and the
policy come from :mod:`gateway.assembly`; a reload swaps in a new assembly whole.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections import Counter
from typing import Any

from gateway.assembly import Assembly, assemble, restart_needed
from gateway.config import Config
from gateway.metrics.registry import Metrics
from gateway.smtp.handler import SideHandler
from gateway.smtp.logins import LoginGuard
from gateway.smtp.protocol import GatewaySMTP

__all__ = ["Gateway"]

log = logging.getLogger(__name__)


def _server_tls_context(config: Config, side: str = "inbound") -> ssl.SSLContext | None:
    """The listeners' TLS. The outbound side asks for a client certificate when
    ``trusted_client_certificates`` names some (optional: councillors' mail programs have none);
    the MX side never does, as a sender's certificate our CAs cannot verify would end the
    handshake."""
    if not config.tls.enabled:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(config.tls.cert_file), str(config.tls.key_file))
    listener = config.listener(side)
    if side == "outbound" and listener.trusted_client_certificates:
        ctx.verify_mode = ssl.CERT_OPTIONAL
        if listener.client_ca_file is not None:
            ctx.load_verify_locations(cafile=str(listener.client_ca_file))
        else:
            ctx.load_default_certs(ssl.Purpose.CLIENT_AUTH)
    return ctx


def _tls_contexts(config: Config) -> dict[str, ssl.SSLContext | None]:
    if config.outbound.trusted_client_certificates and not config.tls.enabled:
        log.warning("[outbound] trusted_client_certificates needs [tls] cert_file and key_file: "
                    "without TLS no client can show a certificate, so none is trusted")
    return {side: _server_tls_context(config, side) for side in ("inbound", "outbound")}


class Gateway:
    """Both listeners in one process. ``start()``, ``stop()``, ``reload(config)``."""

    def __init__(self, config: Config | Assembly):
        self.assembly = config if isinstance(config, Assembly) else assemble(config)
        self.tls_contexts = _tls_contexts(self.config)
        self.servers: dict[str, asyncio.base_events.Server] = {}
        self.ports: dict[str, int] = {}
        self.protocols: set[GatewaySMTP] = set()
        self.in_flight = 0
        self.changed = asyncio.Event()  # set when a transaction ends or a connection closes
        self.stopping = False
        self.logins = LoginGuard(self.config.outbound.login_locks_file)
        self._tasks: set[asyncio.Task[Any]] = set()
        self.counters: Counter[str] = Counter()
        # The Prometheus series (served by the metrics job when [metrics] listen is set).
        self.metrics = Metrics(lambda: self.config.quarantine.path)

    @property
    def config(self) -> Config:
        return self.assembly.config

    @property
    def inbound_port(self) -> int:
        return self.ports["inbound"]

    @property
    def outbound_port(self) -> int:
        return self.ports["outbound"]

    def connections(self, side: str, network: str | None = None) -> int:
        """Open connections on a side (from one client network, when given)."""
        return sum(1 for p in self.protocols if p.side_handler.side == side
                   and (network is None or p.network == network))

    def count(self, event: str) -> None:
        """Count something that happened (refusals, timeouts) for the operator."""
        self.counters[event] += 1
        self.metrics.event(event)

    def track(self, coro: Any) -> None:
        """Run a background job (notices, upstream clean-up) that stop() waits for."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _factory(self, side: str) -> Any:
        handler = SideHandler(self, side)

        def make() -> GatewaySMTP:
            cfg = self.config
            return GatewaySMTP(
                handler,
                data_size_limit=cfg.gateway.max_message_size,
                enable_SMTPUTF8=True,
                hostname=cfg.gateway.hostname,
                ident="ESMTP council-gateway",
                tls_context=self.tls_contexts[side],
                timeout=cfg.gateway.command_timeout,
                auth_require_tls=True,
                auth_exclude_mechanism=["PLAIN", "LOGIN"] if side == "inbound" else None,
            )
        return make

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for side in ("inbound", "outbound"):
            listener = self.config.inbound if side == "inbound" else self.config.outbound
            if listener.listen is None:
                log.info("side=%s does not listen (listen is empty)", side)
                continue
            host, port = listener.listen
            server = await loop.create_server(self._factory(side), host=host, port=port)
            self.servers[side] = server
            self.ports[side] = server.sockets[0].getsockname()[1]
            log.info("listening side=%s address=%s:%d next_hop=%s filters=%s", side, host,
                     self.ports[side], listener.deliver_to,
                     ",".join(self.assembly.pipelines[side].names))

    def _busy(self) -> list[GatewaySMTP]:
        return [p for p in self.protocols if p.in_transaction]

    async def stop(self, grace: float | None = None) -> None:
        """Stop accepting; let transactions already begun finish (bounded); then close."""
        self.stopping = True
        for server in self.servers.values():
            server.close()
        grace = self.config.gateway.shutdown_grace if grace is None else grace
        bye = b"421 4.3.2 The gateway is shutting down; please try again later\r\n"
        try:
            async with asyncio.timeout(grace):
                while True:
                    self.changed.clear()
                    for proto in list(self.protocols):
                        if not proto.in_transaction and not self.in_flight:
                            proto.close_idle(bye)
                    busy = self._busy()
                    if not busy and not self.in_flight:
                        break
                    log.info("waiting for %d transaction(s) to finish", len(busy))
                    await self.changed.wait()
        except TimeoutError:
            log.warning("%d transaction(s) cut off at shutdown", len(self._busy()))
        for proto in list(self.protocols):
            proto.close_idle(bye)
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=grace or 1)
        for server in self.servers.values():
            try:
                async with asyncio.timeout(2):
                    await server.wait_closed()
            except TimeoutError:
                pass

    def reload(self, config: Config) -> None:
        """Swap in a new config; everything is built first so a failure keeps the old one.
        The TLS certificate is read again (a renewed one applies to new connections); a pair
        that does not load keeps the one in use."""
        assembly = assemble(config)
        try:
            self.tls_contexts = _tls_contexts(config)
        except (OSError, ssl.SSLError) as e:
            log.error("tls: the certificate %s and key %s could not be loaded (%s); the one in "
                      "use is kept", config.tls.cert_file, config.tls.key_file, e)
        for key in restart_needed(self.config, config):
            log.warning("%s changed: it takes effect when the gateway is restarted; until then "
                        "the running value stays", key)
        if config.outbound.login_locks_file != self.logins.path:
            self.logins = LoginGuard(config.outbound.login_locks_file)
        self.assembly = assembly
        log.info("configuration reloaded from %s", config.source)

