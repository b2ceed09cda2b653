"""A message kept as its pieces reads as the one message they make, and edits to its header never
copy the body."""

from __future__ import annotations

import pytest

from gateway.content import Content
from gateway.delivery.maildir import lf_chunks
from gateway.mime.headers import strip_trust_headers, tag_subject

BODY = b"body line\r\n" * 10


@pytest.mark.parametrize("content", [
    Content(b"Subject: a\r\n\r\n" + BODY),
    Content(b"X-Gone: 1\r\nSubject: a\r\n\r\n" + BODY, (b"X-Top: 1\r\n",), 11),
    Content(b"\r\n" + BODY, (b"Subject: a\r\n",)),
])
def test_pieces_chunks_and_size_agree(content: Content) -> None:
    whole = content.joined()
    assert b"".join(content.pieces()) == whole
    assert b"".join(content.chunks(7)) == whole
    assert content.size == len(whole)


def test_edit_head_rewrites_only_the_header() -> None:
    buf = b"X-Council-Verdict: forged\r\nSubject: a\r\n\r\n" + BODY
    out = Content(buf, (b"X-Top: 1\r\n",)).edit_head(lambda h: strip_trust_headers(h, "gw"))
    assert out.buf is buf
    assert out.joined() == b"X-Top: 1\r\nSubject: a\r\n\r\n" + BODY
    same = Content(buf)
    assert same.edit_head(lambda h: h) is same


def test_edit_head_of_a_message_without_a_body() -> None:
    out = Content(b"Subject: a\r\n").edit_head(lambda h: tag_subject(h, "[T]"))
    assert out.joined() == tag_subject(b"Subject: a\r\n", "[T]")


@pytest.mark.parametrize("size", [1, 2, 3, 64])
def test_maildir_line_endings_across_chunk_edges(size: int) -> None:
    data = Content(b"a\r\nb\r\r\n\r\nc\rd\r\n", (b"X: 1\r\n",))
    chunks = list(lf_chunks(data, size))
    assert b"".join(chunks) == data.joined().replace(b"\r\n", b"\n")
