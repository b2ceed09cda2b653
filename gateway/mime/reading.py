"""Where and for how long a message's text is read, and the one reading the word checks share.

:func:`message_text` reads in worker threads (a small message's in a pool of its own, so a
stuck reader cannot take the threads other parts of the gateway need; a large one's with the
other work on large messages), so the event loop never waits; a reader still busy at the
deadline is left behind, and what was read until then is kept. Several filters reading the same
message share one reading, of the message as parsed once for every check.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from email.message import Message
from typing import TYPE_CHECKING, TypeVar

from gateway.content import Content
from gateway.mime.text import (
    Extraction,
    Progress,
    TextLimits,
    Unreadable,
    collect,
    extraction_of,
)
from gateway.mime.workers import LARGE, pool_for

if TYPE_CHECKING:
    from gateway.context import MessageContext

__all__ = ["examined_text", "extract_async", "message_text"]

T = TypeVar("T")

# Readers of small messages get threads of their own: one stuck in a library for a hostile file
# then cannot take the threads that parsing, DNS look-ups and file writes use. Large messages
# are read in the pool of all work on large messages (one per CPU at a time), never in these.
_READERS = {True: pool_for(LARGE),
            False: ThreadPoolExecutor(max_workers=2, thread_name_prefix="text-reader")}
# How long past its own deadline a reader may take to notice it before it is left behind.
_GRACE = 2.0


async def extract_async(data: bytes | Message, limits: TextLimits | None = None, *,
                        size: int | None = None) -> Extraction:
    """Read a message in the reader threads; never takes much longer than ``limits.seconds``.
    ``size`` is the message's size in bytes, when ``data`` is already parsed."""
    return (await _read(data, limits or TextLimits(), size, None))[0]


def _read_job(data: bytes | Message, limits: TextLimits, progress: Progress,
              examine: Callable[[Extraction], T] | None) -> tuple[Extraction, T] | None:
    collect(data, limits, progress)
    if examine is None:
        return None
    extraction = extraction_of(progress)
    return extraction, examine(extraction)


async def _read(data: bytes | Message, limits: TextLimits, size: int | None,
                examine: Callable[[Extraction], T] | None
                ) -> tuple[Extraction, tuple[T] | None]:
    """The reading and, when it finished in time, ``examine`` of it in the same visit to the
    reader thread (as a one-tuple; None when it did not run)."""
    large = (len(data) if isinstance(data, bytes) else size or 0) >= LARGE
    progress = Progress(time.monotonic() + limits.seconds)
    loop = asyncio.get_running_loop()
    job = loop.run_in_executor(_READERS[large], _read_job, data, limits, progress, examine)
    try:
        async with asyncio.timeout(limits.seconds + _GRACE):
            done = await job
    except TimeoutError:
        progress.stopped = True
        return extraction_of(progress, Unreadable(progress.place, (
            f"reading it took longer than {limits.seconds:g} seconds; what follows it in the "
            "message was not checked either"))), None
    if done is None:
        return extraction_of(progress), None
    return done[0], (done[1],)


# One reading per message, shared by the filters that look for words. Keyed by the context
# object; the entry goes when the context does.
_SHARED: dict[int, tuple[Content, TextLimits, Extraction]] = {}
_SHARED_LOCK = threading.Lock()
_SUBJECT_FIELD = re.compile(rb"(?im)^subject[ \t]*:")


def _same_message(before: Content, now: Content) -> bool:
    if now is before:
        return True
    # Filters in between may have put header fields on top (Modify.add_headers); that leaves
    # the words the same unless one of them is a new Subject.
    added = now.added_on_top_of(before)
    return added is not None and _SUBJECT_FIELD.search(added) is None


async def message_text(ctx: MessageContext, limits: TextLimits | None = None) -> Extraction:
    """The text of the message in ``ctx``, read once and shared by every filter that asks."""
    return (await examined_text(ctx, None, limits))[0]


async def examined_text(ctx: MessageContext, examine: Callable[[Extraction], T] | None,
                        limits: TextLimits | None = None) -> tuple[Extraction, tuple[T] | None]:
    """:func:`message_text` and, when the text is read now (and in time), ``examine`` of it,
    run in the same visit to the reader thread (as a one-tuple; None when it did not run)."""
    limits = limits or TextLimits()
    key = id(ctx)
    with _SHARED_LOCK:
        hit = _SHARED.get(key)
    if hit is not None and hit[1] == limits and _same_message(hit[0], ctx.content):
        return hit[2], None
    # The message as parsed once for every check (header fields put on top since are the
    # gateway's own record and hold no words to check).
    content = ctx.content
    result, examined = await _read(await ctx.parsed(), limits, ctx.size, examine)
    with _SHARED_LOCK:
        if key not in _SHARED:
            weakref.finalize(ctx, _forget, key)
        _SHARED[key] = (content, limits, result)
    return result, examined


def _forget(key: int) -> None:
    with _SHARED_LOCK:
        _SHARED.pop(key, None)
