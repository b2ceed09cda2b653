"""A message's bytes as the gateway holds them: one buffer from DATA to delivery.

A 20 MiB message must not become 20 MiB more each time a check adds a header field or the
Received field goes on top. :class:`Content` keeps the buffer the message arrived in and, in
front of it, the few header bytes written since (added fields, a rewritten header block); the
whole is joined only when code needs one ``bytes`` (:meth:`Content.joined`). Writers (the next
hop, Maildir, clamd) take :meth:`Content.chunks` instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

__all__ = ["CHUNK", "Content"]

CHUNK = 64 * 1024  # what writers hand on at a time


@dataclass(frozen=True)
class Content:
    """``b"".join(top) + buf[start:]``, kept as its pieces."""

    buf: bytes
    top: tuple[bytes, ...] = ()
    start: int = 0

    @classmethod
    def of(cls, data: bytes | Content) -> Content:
        return data if isinstance(data, Content) else cls(data)

    @property
    def size(self) -> int:
        return sum(map(len, self.top)) + len(self.buf) - self.start

    @property
    def whole(self) -> bool:
        """True when the message is the buffer itself (joining costs nothing)."""
        return not self.top and self.start == 0

    def joined(self) -> bytes:
        if self.whole:
            return self.buf
        return b"".join((*self.top, memoryview(self.buf)[self.start:]))

    def pieces(self) -> tuple[bytes | memoryview, ...]:
        if self.start == 0:
            return (*self.top, self.buf)
        return (*self.top, memoryview(self.buf)[self.start:])

    def chunks(self, size: int = CHUNK) -> Iterator[bytes | memoryview]:
        """The message in pieces of at most ``size`` bytes (views, never copies of the
        buffer)."""
        for piece in self.pieces():
            view = memoryview(piece)
            for at in range(0, len(view), size):
                yield view[at:at + size]

    def added_on_top_of(self, before: Content) -> bytes | None:
        """The bytes put on top of ``before`` to make this message, or None when it is not
        ``before`` with bytes on top. Compared by the pieces where they are shared (no copy of
        a large message), by the bytes where both are whole."""
        if self.buf is before.buf and self.start == before.start:
            added = len(self.top) - len(before.top)
            if added >= 0 and self.top[added:] == before.top:
                return b"".join(self.top[:added])
            return None
        if self.whole and before.whole and self.buf.endswith(before.buf):
            return self.buf[: len(self.buf) - len(before.buf)]
        return None

    def prepend(self, fields: bytes) -> Content:
        """Header fields put on top."""
        if not fields:
            return self
        return Content(self.buf, (fields, *self.top), self.start)

    def _head_end(self) -> int:
        """Where in ``buf`` the blank line after the header ends, or -1 without one."""
        if self.buf.startswith(b"\r\n", self.start):
            return self.start + 2
        end = self.buf.find(b"\r\n\r\n", self.start)
        return -1 if end < 0 else end + 4

    def head(self) -> bytes:
        """The header block with the blank line that ends it (the whole message when it has no
        body)."""
        end = self._head_end()
        if end < 0:
            return self.joined()
        return b"".join((*self.top, self.buf[self.start:end]))

    def edit_head(self, edit: Callable[[bytes], bytes]) -> Content:
        """The message with its header block replaced by ``edit(header block)``; the body stays
        where it is. ``edit`` works on whole messages (it may see one with an empty body)."""
        end = self._head_end()
        if end < 0:
            data = self.joined()
            new = edit(data)
            return self if new == data else Content(new)
        head = b"".join((*self.top, self.buf[self.start:end]))
        new = edit(head)
        if new == head:
            return self
        return Content(self.buf, (new,), end)
