"""Where CPU work on a message's content runs: parsing, reading its text and HTML, footer
surgery, signing.

Never on the event loop, and never so that a small message waits behind a large one. Work on a
message of ``LARGE`` bytes or more runs in a pool of one thread per CPU, so at most that many
large messages are worked on at once (more would only take turns at the interpreter lock, and
each keeps its copies of the message in memory meanwhile); the rest wait their turn there.
Smaller messages have a pool of their own, which large ones never fill.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

__all__ = ["CPUS", "LARGE", "in_worker", "pool_for"]

T = TypeVar("T")

LARGE = 256 * 1024  # bytes: a typical letter with a photo or two is under this
CPUS = os.cpu_count() or 2
_LARGE_POOL = ThreadPoolExecutor(max_workers=CPUS, thread_name_prefix="large-message")
_SMALL_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="small-message")


def pool_for(size: int) -> ThreadPoolExecutor:
    """The pool for work on a message of ``size`` bytes."""
    return _LARGE_POOL if size >= LARGE else _SMALL_POOL


async def in_worker(size: int, fn: Callable[..., T], *args: object) -> T:
    """``fn(*args)`` in a worker thread of the pool for ``size``, with the caller's context
    (the connection id on log lines)."""
    call = functools.partial(contextvars.copy_context().run, fn, *args)
    return await asyncio.get_running_loop().run_in_executor(pool_for(size), call)
