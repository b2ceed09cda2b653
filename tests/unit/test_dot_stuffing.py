"""Dot-stuffing a chunk at a time gives what stuffing the whole message at once gives, wherever
the chunks are cut (RFC 5321 4.5.2)."""

from __future__ import annotations

import re

import pytest

from gateway.content import Content
from gateway.delivery.datawriter import batched, dot_stuffed


def _at_once(data: bytes) -> bytes:
    if data and not data.endswith(b"\r\n"):
        data += b"\r\n"
    return re.sub(rb"(?m)^\.", b"..", data) + b".\r\n"


CASES = [
    b"",
    b".",
    b".\r\n",
    b"a\r\n.\r\n..\r\n.b\r\nc",
    b"no dots at all\r\n",
    b"\r\n.\r\n\r\n.x\r\n",
    b"x.y\r\n. \r\n",
]


@pytest.mark.parametrize("data", CASES)
@pytest.mark.parametrize("size", [1, 2, 3, 5, 64])
def test_stuffed_in_chunks_as_at_once(data: bytes, size: int) -> None:
    assert b"".join(dot_stuffed(Content(data), size)) == _at_once(data)


@pytest.mark.parametrize("size", [1, 2, 4])
def test_stuffed_across_pieces(size: int) -> None:
    content = Content(b"drop\r\n.body\r\n", (b"X: 1\r\n", b"."), 6)
    assert content.joined() == b"X: 1\r\n..body\r\n"
    assert b"".join(dot_stuffed(content, size)) == _at_once(content.joined())


def test_small_pieces_go_out_together_and_large_ones_alone() -> None:
    content = Content(b"Subject: x\r\n\r\nbody\r\n", (b"Received: a\r\n", b"X-Trace: 1\r\n"))
    assert list(batched(dot_stuffed(content))) == [content.joined() + b".\r\n"]
    pieces = [b"a" * 5, b"b" * 5, b"c" * 20, b"d"]
    assert list(batched(iter(pieces), 10)) == [b"a" * 5 + b"b" * 5, b"c" * 20, b"d"]
