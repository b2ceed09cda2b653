"""Measuring a message before anything parses it, and reading HTML once for its text and links."""

from __future__ import annotations

import pytest

from gateway.mime.html import Link, read_html
from gateway.mime.limits import Complexity, MimeLimits, measure, too_complex

HEAD = b"From: a@example.org\r\nSubject: s\r\n"


def multipart(*parts: bytes) -> bytes:
    body = b"".join(b"--b\r\n" + p for p in parts)
    return HEAD + b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n' + body + b"--b--\r\n"


@pytest.mark.parametrize("data, text", [
    (HEAD + b"\r\nhello\r\n", 7),  # no declared type: text/plain
    (HEAD + b"Content-Type: text/html; charset=utf-8\r\n\r\n<p>hi</p>\r\n", 11),
    (HEAD + b"Content-Type: image/png\r\n\r\nAAAA\r\n", 0),
    (multipart(b"Content-Type: text/plain\r\n\r\nabc\r\n",
               b"Content-Type: text/plain\r\nContent-Disposition: attachment\r\n\r\nxyz\r\n",
               b"Content-Type: application/pdf\r\n\r\n%PDF\r\n",
               b"Content-Type: TEXT/HTML\r\n\r\n<b>x</b>\r\n"), 5 + 10),
])
def test_text_counts_the_body_text_the_checks_read(data: bytes, text: int) -> None:
    assert measure(data).text == text


def test_parts_and_depth() -> None:
    inner = (b'Content-Type: multipart/alternative; boundary="c"\r\n\r\n--c\r\n'
             b"Content-Type: text/plain\r\n\r\nx\r\n--c--\r\n")
    assert measure(multipart(inner, b"\r\ny\r\n")) == Complexity(4, 2, 6)


@pytest.mark.parametrize("c, why", [
    (Complexity(1001, 1, 0), "it has more than 1,000 parts, too many to check safely"),
    (Complexity(5, 21, 0), "its parts are nested more than 20 deep, too deep to check safely"),
    (Complexity(1, 0, 9 * 1024 * 1024),
     "it has more than 8 MiB of text, too much to check safely"),
    (Complexity(1000, 20, 8 * 1024 * 1024), None),
])
def test_too_complex_says_which_limit(c: Complexity, why: str | None) -> None:
    assert too_complex(c, MimeLimits()) == why


def test_measuring_stops_once_over_a_limit() -> None:
    data = multipart(b"Content-Type: text/plain\r\n\r\n" + b"x\r\n" * 10_000,
                     *[b"\r\npart\r\n"] * 2000)
    stopped = measure(data, MimeLimits(max_text=50))
    assert stopped.text == 30_000 and stopped.parts == 2  # the 2,000 parts after: not read
    assert measure(data) == Complexity(2002, 1, 30_000 + 2000 * 6)


def test_a_message_of_one_part_is_its_body() -> None:
    assert measure(HEAD + b"\r\n" + b"x" * 100 + b"\r\n" * 10_000).text == 20_100


def test_html_read_once_gives_text_and_links() -> None:
    got = read_html('<p>Pay <a href="https://evil.example/x">www.<b>bank</b>.example</a></p>'
                    "<p>today</p><a name='top'>no link</a>")
    assert got.text == "Pay www.bank.example\n\ntoday\n\nno link"
    assert got.links == (Link("www. bank .example", "https://evil.example/x"),)
    assert not got.too_deep
    assert read_html("<p>x</p>", links=False).links == ()


def test_html_nested_deeper_than_the_parser_reads_is_said_to_be() -> None:
    deep = read_html("<div>" * 300 + "hidden" + "</div>" * 300)
    assert deep.too_deep and "hidden" not in deep.text
    assert not read_html("<div>" * 100 + "seen" + "</div>" * 100).too_deep
