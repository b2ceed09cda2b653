"""Measuring a message before anything parses it, and reading HTML once for its text and links."""

from __future__ import annotations

import pytest

from gateway.context import parse_message
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
    c = measure(multipart(inner, b"\r\ny\r\n"))
    assert (c.parts, c.depth, c.text) == (4, 2, 6)


@pytest.mark.parametrize("c, why", [
    (Complexity(1001, 1, 0), "it has more than 1,000 parts, too many to check safely"),
    (Complexity(5, 21, 0), "its parts are nested more than 20 deep, too deep to check safely"),
    (Complexity(1, 0, 9 * 1024 * 1024),
     "it has more than 8 MiB of text, too much to check safely"),
    (Complexity(1000, 20, 8 * 1024 * 1024), None),
])
def test_too_complex_says_which_limit(c: Complexity, why: str | None) -> None:
    assert too_complex(c, MimeLimits()) == why


def test_header_fields_are_measured_in_every_header_block() -> None:
    part_head = b"Content-Type: text/plain\r\nContent-Description: " + b"d" * 3000 + b"\r\n"
    data = multipart(b"Content-Type: text/plain\r\n\r\nabc\r\n", part_head + b"\r\nxyz\r\n")
    c = measure(data)
    top = len(HEAD) + len(b'Content-Type: multipart/mixed; boundary="b"\r\n')
    assert c.header == top + len(b"Content-Type: text/plain\r\n") + len(part_head)
    assert c.field == (len(b"Content-Description: ") + 3000, 64 * 1024, "Content-Description")


@pytest.mark.parametrize("field, why", [
    (b"Subject: s" + b"\r\n x" * 40_000,  # folded over 40,000 lines: 80 KB unfolded
     "its Subject header field is longer than 64 KiB, too long to check safely"),
    (b"To: " + b"a@example.org, " * 2500,  # read as addresses: half of it
     "its To header field is longer than 32 KiB, too long to check safely"),
    (b"From: " + b"(x)" * 4000 + b" a@example.org",  # 12 KB, two tokens in three bytes
     "its fields read as addresses or parameters (From, To, Content-Type ...) are too "
     "intricate to check safely"),
    (b"content-TYPE: text/plain; " + b"a=b; " * 2500,
     "its fields read as addresses or parameters (From, To, Content-Type ...) are too "
     "intricate to check safely"),
    (b"To: " + b'"Firstname Lastname" <first.last@parish-council.gov.uk>, ' * 150, None),
    (b"".join(b"X-Note-%d: %s\r\n" % (i, b"n" * 1000) for i in range(300)).rstrip(),
     "its header fields (its own and its parts') are longer than 256 KiB together, too long "
     "to check safely"),
    (b"Subject: " + b"s" * 60_000, None),
    (b"To: " + b"a@example.org, " * 500, None),  # 7.5 KB of addresses
])
def test_a_long_header_field_is_too_complex(field: bytes, why: str | None) -> None:
    data = b"Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n" + field + b"\r\n\r\nhello\r\n"
    assert too_complex(measure(data), MimeLimits()) == why
    assert too_complex(measure(data, MimeLimits()), MimeLimits()) == why  # stopping early


def test_a_field_in_a_part_and_a_message_that_is_all_header() -> None:
    long_type = b"Content-Type: text/plain; name=" + b"n" * 33_000 + b"\r\n"
    c = measure(multipart(long_type + b"\r\nx\r\n"))
    assert c.field[1:] == (32 * 1024, "Content-Type") and c.field[0] > 33_000
    c = measure(HEAD + b"X-Long: " + b"y" * 70_000)  # no blank line, no body
    assert c.field == (len(b"X-Long: ") + 70_000, 64 * 1024, "X-Long")


def test_measuring_stops_once_over_a_limit() -> None:
    data = multipart(b"Content-Type: text/plain\r\n\r\n" + b"x\r\n" * 10_000,
                     *[b"\r\npart\r\n"] * 2000)
    stopped = measure(data, MimeLimits(max_text=50))
    assert stopped.text == 30_000 and stopped.parts == 2  # the 2,000 parts after: not read
    whole = measure(data)
    assert (whole.parts, whole.depth, whole.text) == (2002, 1, 30_000 + 2000 * 6)


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


def attached(message: bytes) -> bytes:
    return multipart(b"Content-Type: text/plain\r\n\r\nsee attached\r\n",
                     b"Content-Type: message/rfc822\r\n\r\n" + message)


def test_an_attached_messages_header_fields_are_measured() -> None:
    # The email package parses an attached message's header as it parses the message's own,
    # and the word checks read its Subject.
    inner = b"From: x@example.org\r\nSubject: s" + b"\r\n x" * 40_000 + b"\r\n\r\nbody\r\n"
    assert too_complex(measure(attached(inner)), MimeLimits()) == (
        "its Subject header field is longer than 64 KiB, too long to check safely")


def test_an_attached_messages_parts_and_nesting_count() -> None:
    parts = b"".join(b"--i\r\nContent-Type: text/plain\r\n\r\nx\r\n" for _ in range(1100))
    inner = b'Content-Type: multipart/mixed; boundary="i"\r\n\r\n' + parts + b"--i--\r\n"
    assert measure(attached(inner)).parts == 1 + 2 + 1 + 1100
    chain = b"Subject: at the bottom\r\n\r\nhello\r\n"
    for _ in range(25):  # forwarded, and forwarded again, 25 times
        chain = b"Content-Type: message/rfc822\r\n\r\n" + chain
    c = measure(HEAD + chain)
    assert (c.parts, c.depth, c.text) == (26, 25, 7)
    assert too_complex(c, MimeLimits()) == (
        "its parts are nested more than 20 deep, too deep to check safely")


def test_the_header_block_ends_where_the_email_package_ends_it() -> None:
    # A line that is neither a field nor a continuation is the first line of the body.
    c = measure(b"Subject: s\r\nhello there\r\nmore\r\n")
    assert (c.text, c.header) == (len(b"hello there\r\nmore\r\n"), len(b"Subject: s\r\n"))
    # A delivery report's body is header blocks to the email package: counted as such.
    report = b"Content-Type: message/delivery-status\r\n\r\n" + b"X-Status: 5.0.0\r\n" * 20_000
    assert too_complex(measure(multipart(report)), MimeLimits()) == (
        "its header fields (its own and its parts') are longer than 256 KiB together, too long "
        "to check safely")


def _email_parts(data: bytes) -> int:
    return sum(1 for _ in parse_message(data).walk())


def _many(head: bytes, n: int = 30, close: bytes = b"--b--\r\n") -> bytes:
    return (HEAD + head + b"\r\n\r\n" + b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n" * n
            + close)


@pytest.mark.parametrize("data", [
    _many(b"Content-Type: multipart/mixed; boundary*0=b"),  # RFC 2231 pieces
    _many(b'Content-Type: multipart/mixed; x="boundary=fake"; boundary=b'),  # a decoy
    _many(b"Content-Type: multipart/mixed; boundary=b", close=b"--b--\x0b\r\n"),
    # only the first Content-Type counts: here the message is an attached message
    HEAD + b"Content-Type: message/rfc822\r\nContent-Type: multipart/mixed; boundary=never"
    b"\r\n\r\n" + _many(b"Content-Type: multipart/mixed; boundary=b"),
    # a boundary line ends a part even inside its header block
    HEAD + b'Content-Type: multipart/mixed; boundary="b:"\r\n\r\n'
    + b"--b:\r\nContent-Type: text/plain\r\n" * 30 + b"--b:--\r\n",
    # each block of a delivery report is an entity
    multipart(b"Content-Type: message/delivery-status\r\n\r\n" + b"A: 1\r\n\r\n" * 30),
])
def test_the_measure_counts_the_parts_the_email_package_makes(data: bytes) -> None:
    assert measure(data).parts >= _email_parts(data) > 25


def test_fields_read_as_addresses_or_parameters_are_limited_together() -> None:
    # 4 KB of parameters: 2,400 tokens, 9.7 million of the 67 million a message may have
    parts = [b"Content-Type: text/plain\r\nContent-Disposition: attachment; " + b"a=b; " * 800
             + b"\r\n\r\nz\r\n"] * 8
    assert too_complex(measure(multipart(*parts[:4])), MimeLimits()) is None
    assert too_complex(measure(multipart(*parts)), MimeLimits()) == (
        "its fields read as addresses or parameters (From, To, Content-Type ...) are too "
        "intricate to check safely")


def test_lines_inside_deeply_nested_parts_are_limited() -> None:
    head, tail = b"", b""
    for level in range(20):
        head += b'Content-Type: multipart/mixed; boundary="n%d"\r\n\r\n--n%d\r\n' % (level, level)
        tail = b"--n%d--\r\n" % level + tail
    data = HEAD + head + b"Content-Type: text/plain\r\n\r\n" + b"x\r\n" * 500_000 + tail
    c = measure(data)
    assert c.nested_lines > 20 * 500_000 and c.text == 1_500_000
    assert too_complex(c, MimeLimits()) == (
        "it has too many lines inside parts nested in other parts to check safely")


def test_a_digests_parts_are_attached_messages_but_not_their_own_parts() -> None:
    # A part of a multipart/digest with no Content-Type is a message (RFC 2046 5.1.5); the
    # message inside it is not in the digest, even when its header block is empty.
    data = (b"Subject: s\r\nContent-Type: multipart/digest; boundary=b\r\n\r\n"
            b"--b\r\nnot a header line\r\nmore\r\n"
            b"--b\r\n\r\nFrom: x@example.org\r\nSubject: inner\r\n\r\nbody\r\n--b--\r\n")
    c = measure(data)
    assert (c.parts, c.depth) == (_email_parts(data), 2) == (5, 2)


@pytest.mark.parametrize("boundary", [b"(c)b", b'"b" (c)', b'"=?utf-8?q?b?="'])
def test_a_boundary_mail_programs_read_differently_is_too_complex(boundary: bytes) -> None:
    # The email package reads "b"; a program reading parameters as older ones do, the whole
    # text: a blocked attachment behind "--(c)b" lines would be one part to the checks.
    data = _many(b"Content-Type: multipart/mixed; boundary=" + boundary, n=3)
    assert too_complex(measure(data), MimeLimits()) == (
        "its parts' boundary is written so that mail programs read it in different ways, so "
        "it cannot be checked safely")
    assert too_complex(measure(_many(b'Content-Type: multipart/mixed; boundary="b"', n=3)),
                       MimeLimits()) is None
