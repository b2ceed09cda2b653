"""Running the clerk's page with uvicorn: alone, or inside the ``run`` process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Generator
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import uvicorn
from starlette.applications import Starlette

from gateway.assembly import Assembly, assemble
from gateway.config import Config
from gateway.review.app import create_app
from gateway.review.settings import ReviewConfig, review_warnings

if TYPE_CHECKING:
    from gateway.smtp.server import Gateway

__all__ = ["review_job", "running_review", "uvicorn_config", "EmbeddedServer"]

log = logging.getLogger(__name__)


def uvicorn_config(app: Starlette, config: Config, host: str | None = None,
                   port: int | None = None) -> uvicorn.Config:
    cfg = config.section(ReviewConfig)
    root_path = urlsplit(cfg.public_url).path.rstrip("/") if cfg.public_url else ""
    return uvicorn.Config(
        app, host=host if host is not None else cfg.listen[0],
        port=port if port is not None else cfg.listen[1],
        # The app reads X-Forwarded-For itself, and only from [review] trusted_proxies.
        proxy_headers=False,
        root_path=root_path, lifespan="off", access_log=False, log_config=None,
        server_header=False, timeout_graceful_shutdown=5)


class EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signals to its host process (``run`` or a test)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    @property
    def port(self) -> int:
        return int(self.servers[0].sockets[0].getsockname()[1])


@contextlib.asynccontextmanager
async def running_review(source: Config | Assembly | Callable[[], Assembly],
                         host: str | None = None,
                         port: int | None = None) -> AsyncIterator[EmbeddedServer]:
    """Serve the page in this event loop until the block ends; yields the started server."""
    if isinstance(source, Config):
        source = assemble(source)
    current = source() if callable(source) else source
    server = EmbeddedServer(uvicorn_config(create_app(source), current.config, host, port))
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:  # uvicorn has no start-up event to wait on
                if task.done():
                    task.result()
                    raise OSError("the review page did not start")
                await asyncio.sleep(0.01)
        yield server
    finally:
        server.should_exit = True
        with contextlib.suppress(SystemExit):
            await task


async def review_job(gateway: Gateway) -> None:
    """For ``run``: serve the page beside the listeners when ``[review] enabled = true``."""
    cfg = gateway.config.section(ReviewConfig)
    if not cfg.enabled:
        return

    def live() -> Assembly:
        return gateway.assembly

    try:
        async with running_review(live) as server:
            log.info("review page listening on %s:%d", cfg.listen[0], server.port)
            for warning in review_warnings(cfg):
                log.warning("%s", warning)
            await asyncio.Event().wait()  # until run cancels this job
    except (OSError, SystemExit) as e:
        log.error("the review page could not listen on %s:%d: %s", cfg.listen[0],
                  cfg.listen[1], e)
