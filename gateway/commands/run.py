"""``council-gateway run``: start both listeners and serve until SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from gateway.assembly import JOBS, load_config
from gateway.commands.common import add_config_option, with_config
from gateway.config import Config, ConfigError
from gateway.logctx import logging_off_the_loop
from gateway.memory import return_big_buffers
from gateway.permissions import loose_permissions
from gateway.smtp.server import Gateway

log = logging.getLogger(__name__)

# Whenever a worker thread holds the interpreter lock, the event loop waits for it at every
# turn, up to this long. Python's default (5 ms) made a small message's reply take seconds
# while large ones were read; 0.5 ms costs the large ones a few per cent (docs/benchmarks.md,
# "Hostile senders").
SWITCH_INTERVAL = 0.0005


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "run",
        help="run the gateway (both listeners)",
        description="Run the gateway: the inbound and outbound listeners in one process. "
                    "SIGTERM stops it gracefully; SIGHUP reloads the config file.",
    )
    add_config_option(p)
    p.set_defaults(func=run)


@with_config
def run(args: argparse.Namespace, config: Config) -> int:
    for note in config.notes:
        log.warning("old spelling in the config (still read): %s", note)
    for warning in loose_permissions(config):
        log.warning("%s", warning)
    sys.setswitchinterval(SWITCH_INTERVAL)
    return_big_buffers()
    with logging_off_the_loop():
        return asyncio.run(serve(config, args.config))


async def serve(config: Config, path: str | None) -> int:
    gateway = Gateway(config)
    try:
        await gateway.start()
    except OSError as e:
        log.error("cannot listen: %s", e)
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def reload() -> None:
        try:
            new = load_config(path)
            gateway.reload(new)
        except ConfigError as err:
            log.error("reload refused; keeping the running configuration. Problems in %s: %s",
                      err.source, "; ".join(str(p) for p in err.problems))
        except Exception as e:  # a filter that cannot be built from the new config
            log.error("reload refused; keeping the running configuration: %s", e)

    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, reload)
    jobs = [asyncio.create_task(job(gateway), name=name) for name, job in JOBS]
    log.info("gateway ready (config %s)", config.source)
    await stop.wait()
    log.info("stopping: no new connections; finishing messages in flight")
    for job in jobs:
        job.cancel()
    await gateway.stop()
    log.info("stopped")
    return 0
