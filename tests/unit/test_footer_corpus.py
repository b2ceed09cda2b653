"""Kirkham rule 11: every message shape mail clients send gets the privacy-notice footer, once,
without losing or changing anything else."""

from __future__ import annotations

import base64
from collections.abc import Callable
from email.message import EmailMessage

import pytest

from gateway.mime.footer import Footer, apply_footer
from tests.footer_support import FOOTERS, check_invariants, crlf, parse, text_of, to_bytes

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")
ICS = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Test//EN\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\n"
       "UID:1@example.org\r\nDTSTART:20250101T190000Z\r\nSUMMARY:Parish council meeting\r\n"
       "END:VEVENT\r\nEND:VCALENDAR\r\n")
HTML = ("<html><head><meta charset=\"utf-8\"><style>p{color:red}</style></head>"
        "<body><p>Dear resident,</p><p>The meeting is on Monday.</p></body></html>\n")


def base(subject: str = "Parish council meeting") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Clerk <clerk@stanion-pc.gov.uk>"
    msg["To"] = "Resident <resident@example.org>"
    msg["Subject"] = subject
    msg["Date"] = "Mon, 06 Jan 2025 10:00:00 +0000"
    msg["Message-ID"] = "<test@stanion-pc.gov.uk>"
    return msg


def plain(body: str = "Dear resident,\nThe meeting is on Monday.\n", **kw: object) -> EmailMessage:
    msg = base()
    msg.set_content(body, **kw)  # type: ignore[arg-type]
    return msg


def raw_message(headers: str, body: bytes) -> bytes:
    return crlf(headers.encode("ascii") + b"\n\n" + body)


def html_only(html: str = HTML, **kw: object) -> EmailMessage:
    msg = base()
    msg.set_content(html, subtype="html", **kw)  # type: ignore[arg-type]
    return msg


def alternative() -> EmailMessage:
    msg = plain()
    msg.add_alternative(HTML, subtype="html")
    return msg


def mixed_with_attachments() -> EmailMessage:
    msg = alternative()
    msg.add_attachment(PDF, maintype="application", subtype="pdf", filename="minutes.pdf")
    msg.add_attachment(PNG, maintype="image", subtype="png", filename="map.png")
    msg.add_attachment("a,b\n1,2\n", subtype="csv", filename="budget.csv")
    return msg


def related() -> EmailMessage:
    msg = base()
    msg.set_content("Dear resident, see the map.\n")
    msg.add_alternative('<html><body><p>See the map:</p><img src="cid:map@x"></body></html>',
                        subtype="html")
    html_part = msg.get_payload()[1]
    html_part.add_related(PNG, maintype="image", subtype="png", cid="<map@x>")
    msg.add_attachment(PDF, maintype="application", subtype="pdf", filename="minutes.pdf")
    return msg


def related_only() -> EmailMessage:
    msg = html_only('<html><body><img src="cid:logo@x"><p>Hello</p></body></html>')
    msg.add_related(PNG, maintype="image", subtype="png", cid="<logo@x>")
    return msg


def apple_interleaved() -> bytes:
    return raw_message(
        "From: clerk@stanion-pc.gov.uk\nTo: r@example.org\nSubject: photos\nMIME-Version: 1.0\n"
        'Content-Type: multipart/mixed; boundary="Apple-Mail=_1"',
        b"--Apple-Mail=_1\nContent-Type: text/plain; charset=us-ascii\n"
        b"Content-Transfer-Encoding: 7bit\n\nHere is the hall:\n\n"
        b"--Apple-Mail=_1\nContent-Type: image/png; name=hall.png\nContent-Disposition: inline; "
        b"filename=hall.png\nContent-Transfer-Encoding: base64\n\n"
        + base64.encodebytes(PNG) +
        b"\n--Apple-Mail=_1\nContent-Type: text/plain; charset=us-ascii\n"
        b"Content-Transfer-Encoding: 7bit\n\nAnd that is all.\n\n--Apple-Mail=_1--\n")


def calendar_invite() -> EmailMessage:
    msg = plain("You are invited to the parish council meeting.\n")
    msg.add_alternative(HTML, subtype="html")
    msg.add_alternative(ICS, subtype="calendar", params={"method": "REQUEST"})
    msg.add_attachment(ICS.encode(), maintype="application", subtype="ics", filename="invite.ics")
    return msg


def forward_rfc822() -> EmailMessage:
    inner = plain("This is the resident's original complaint.\n")
    msg = plain("Forwarding the complaint below.\n")
    msg.add_attachment(inner)
    return msg


def nested_mixed() -> EmailMessage:
    inner = alternative()
    inner.add_attachment(PNG, maintype="image", subtype="png", filename="a.png",
                         disposition="inline")
    msg = base()
    msg.make_mixed()
    msg.attach(inner)
    msg.add_attachment(PDF, maintype="application", subtype="pdf", filename="minutes.pdf")
    return msg


def attachment_only() -> EmailMessage:
    msg = base()
    msg.add_attachment(PDF, maintype="application", subtype="pdf", filename="minutes.pdf")
    return msg


def _bytes(make: Callable[[], EmailMessage]) -> Callable[[], bytes]:
    return lambda: to_bytes(make())


CORPUS: dict[str, Callable[[], bytes]] = {
    "plain 7bit ascii": lambda: raw_message(
        "From: Clerk <clerk@stanion-pc.gov.uk>\nTo: r@example.org\nSubject: Meeting\n"
        "MIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n"
        "Content-Transfer-Encoding: 7bit", b"Dear resident,\nThe meeting is on Monday.\n"),
    "plain utf-8 7bit": _bytes(plain),
    "plain utf-8 8bit": _bytes(lambda: plain("Caf\u00e9 \u2018menu\u2019: \u00a35.\n",
                                             cte="8bit")),
    "plain utf-8 quoted-printable": _bytes(lambda: plain("Na\u00efve caf\u00e9\n" + "x" * 100,
                                                         cte="quoted-printable")),
    "plain utf-8 base64": _bytes(lambda: plain("Gr\u00fc\u00dfe aus Stanion\n", cte="base64")),
    "plain iso-8859-1 8bit": lambda: raw_message(
        "From: clerk@stanion-pc.gov.uk\nTo: r@example.org\nSubject: x\nMIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: 8bit",
        "Caf\u00e9 costs \u00a35.\n".encode("iso-8859-1")),
    "plain iso-8859-1 quoted-printable": lambda: raw_message(
        "From: clerk@stanion-pc.gov.uk\nTo: r@example.org\nSubject: x\nMIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: "
        "quoted-printable", b"Caf=E9 costs =A35.\n"),
    "plain windows-1252 8bit": lambda: raw_message(
        "From: clerk@stanion-pc.gov.uk\nTo: r@example.org\nSubject: x\nMIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=windows-1252\nContent-Transfer-Encoding: 8bit",
        "\u2018Quoted\u2019 \u20ac10 \u2013 done\n".encode("windows-1252")),
    "plain koi8-r": lambda: raw_message(
        "From: clerk@stanion-pc.gov.uk\nTo: r@example.org\nSubject: x\nMIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=koi8-r\nContent-Transfer-Encoding: 8bit",
        "\u041f\u0440\u0438\u0432\u0435\u0442\n".encode("koi8-r")),
    "plain shift_jis base64": lambda: raw_message(
        "From: clerk@stanion-pc.gov.uk\nTo: r@example.org\nSubject: x\nMIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=shift_jis\nContent-Transfer-Encoding: base64",
        base64.encodebytes("\u3053\u3093\u306b\u3061\u306f\n".encode("shift_jis"))),
    "no MIME headers at all": lambda: raw_message(
        "From: clerk@stanion-pc.gov.uk\nTo: r@example.org\nSubject: old style",
        b"Just text.\n"),
    "no body at all": lambda: crlf(b"From: clerk@stanion-pc.gov.uk\nTo: r@example.org\n"
                                   b"Subject: empty\n\n"),
    "headers only, no blank line": lambda: b"From: clerk@stanion-pc.gov.uk\r\nSubject: x\r\n",
    "plain empty body": _bytes(lambda: plain("")),
    "plain no final newline": lambda: raw_message(
        "From: clerk@stanion-pc.gov.uk\nTo: r@example.org\nSubject: x", b"no newline")[:-2],
    "format=flowed": lambda: raw_message(
        "From: clerk@stanion-pc.gov.uk\nTo: r@example.org\nSubject: x\nMIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=utf-8; format=flowed\nContent-Transfer-Encoding: 8bit",
        b"This paragraph is long and flowed so it \nwraps across lines.\n\nSecond one.\n"),
    "format=flowed delsp=yes": lambda: raw_message(
        "From: clerk@stanion-pc.gov.uk\nTo: r@example.org\nSubject: x\nMIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=utf-8; format=flowed; delsp=yes",
        b"Soft  \nbreak.\n"),
    "html only": _bytes(html_only),
    "html without </body>": _bytes(lambda: html_only("<html><p>Hello</p></html>")),
    "html fragment": _bytes(lambda: html_only("<p>Hello</p><p>Bye</p>")),
    "html iso-8859-1 base64": lambda: raw_message(
        "From: clerk@stanion-pc.gov.uk\nTo: r@example.org\nSubject: x\nMIME-Version: 1.0\n"
        "Content-Type: text/html; charset=iso-8859-1\nContent-Transfer-Encoding: base64",
        base64.encodebytes("<html><body><p>Caf\u00e9</p></body></html>".encode("latin-1"))),
    "html charset only in meta": lambda: raw_message(
        "From: clerk@stanion-pc.gov.uk\nTo: r@example.org\nSubject: x\nMIME-Version: 1.0\n"
        "Content-Type: text/html\nContent-Transfer-Encoding: 8bit",
        '<html><head><meta charset="windows-1252"></head><body>\u20ac5</body></html>'
        .encode("windows-1252")),
    "html one 3000-character line": _bytes(lambda: html_only(
        "<html><body>" + "<span>word</span> " * 170 + "</body></html>", cte="8bit")),
    "html empty": _bytes(lambda: html_only("")),
    "alternative": _bytes(alternative),
    "mixed with attachments": _bytes(mixed_with_attachments),
    "related with inline image in alternative": _bytes(related),
    "related html with logo": _bytes(related_only),
    "apple interleaved text and image": apple_interleaved,
    "calendar invitation": _bytes(calendar_invite),
    "forward as message/rfc822": _bytes(forward_rfc822),
    "nested mixed": _bytes(nested_mixed),
    "attachment only": _bytes(attachment_only),
    "bare text/calendar": lambda: raw_message(
        "From: clerk@stanion-pc.gov.uk\nTo: r@example.org\nSubject: meeting\nMIME-Version: 1.0\n"
        "Content-Type: text/calendar; method=REQUEST; charset=utf-8",
        ICS.encode()),
    "bare pdf": lambda: raw_message(
        "From: clerk@stanion-pc.gov.uk\nTo: r@example.org\nSubject: minutes\nMIME-Version: 1.0\n"
        "Content-Type: application/pdf\nContent-Transfer-Encoding: base64",
        base64.encodebytes(PDF)),
    "unknown charset": lambda: raw_message(
        "From: clerk@stanion-pc.gov.uk\nTo: r@example.org\nSubject: x\nMIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=x-made-up\nContent-Transfer-Encoding: 8bit",
        b"Bytes \xe9\xe8 in no known charset\n"),
    "utf-8 label on latin-1 bytes": lambda: raw_message(
        "From: clerk@stanion-pc.gov.uk\nTo: r@example.org\nSubject: x\nMIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit",
        b"Caf\xe9\n"),
    "mixed whose body cannot be decoded": lambda: raw_message(
        "From: clerk@stanion-pc.gov.uk\nTo: r@example.org\nSubject: x\nMIME-Version: 1.0\n"
        'Content-Type: multipart/mixed; boundary="b1"',
        b"--b1\nContent-Type: text/plain; charset=x-made-up\n\nodd \xff\n"
        b"--b1\nContent-Type: application/pdf; name=a.pdf\nContent-Transfer-Encoding: base64\n\n"
        + base64.encodebytes(PDF) + b"--b1--\n"),
}


@pytest.mark.parametrize("footer_name", sorted(FOOTERS))
@pytest.mark.parametrize("shape", sorted(CORPUS))
def test_every_shape_gets_the_footer_once_and_keeps_everything_else(
        shape: str, footer_name: str) -> None:
    footer = FOOTERS[footer_name]
    original = CORPUS[shape]()
    result = apply_footer(original, footer)
    assert result.data is not None and result.outcome in ("added", "wrapped")
    check_invariants(original, result.data, footer)


def _leaf_after(shape: str, footer: Footer) -> tuple[bytes, bytes]:
    original = CORPUS[shape]()
    out = apply_footer(original, footer).data
    assert out is not None
    return original, out


@pytest.mark.parametrize("shape,charset", [
    ("plain 7bit ascii", "us-ascii"),         # ascii footer fits; intl footer -> utf-8
    ("plain iso-8859-1 8bit", "iso-8859-1"),
    ("plain windows-1252 8bit", "windows-1252"),
    ("plain koi8-r", "koi8-r"),
])
def test_plain_text_keeps_its_charset_when_the_footer_fits(shape: str, charset: str) -> None:
    _, out = _leaf_after(shape, FOOTERS["ascii"])
    assert parse(out).get_content_charset() == charset


@pytest.mark.parametrize("shape,charset", [
    ("plain 7bit ascii", "utf-8"),
    ("plain iso-8859-1 8bit", "utf-8"),   # no en dash or curly quotes in ISO-8859-1
    ("plain windows-1252 8bit", "windows-1252"),  # cp1252 holds all of them
    ("no MIME headers at all", "utf-8"),
])
def test_plain_text_moves_to_utf8_when_the_charset_cannot_hold_the_footer(
        shape: str, charset: str) -> None:
    _, out = _leaf_after(shape, FOOTERS["intl"])
    msg = parse(out)
    assert msg.get_content_charset() == charset
    assert "\u2013 privacy notice" in text_of(msg)
    assert msg["MIME-Version"] == "1.0"


def test_html_keeps_its_charset_and_writes_what_it_cannot_hold_as_references() -> None:
    _, out = _leaf_after("html iso-8859-1 base64", FOOTERS["intl"])
    msg = parse(out)
    assert msg.get_content_charset() == "iso-8859-1"
    html = text_of(msg)
    assert "&#8211;" in html and "Caf\u00e9" in html
    assert msg["Content-Transfer-Encoding"] == "base64"


def test_7bit_part_becomes_quoted_printable_when_the_footer_is_not_ascii() -> None:
    original, out = _leaf_after("plain 7bit ascii", FOOTERS["intl"])
    assert parse(original)["Content-Transfer-Encoding"] == "7bit"
    assert parse(out)["Content-Transfer-Encoding"] == "quoted-printable"
    assert out.isascii()


def test_overlong_html_line_is_reencoded_so_no_line_passes_998_bytes() -> None:
    original, out = _leaf_after("html one 3000-character line", FOOTERS["ascii"])
    assert max(map(len, original.split(b"\r\n"))) > 998
    assert parse(out)["Content-Transfer-Encoding"] == "quoted-printable"


def test_format_flowed_footer_lines_do_not_end_in_spaces_unless_soft_breaks() -> None:
    long_footer = Footer("Privacy: " + "we keep personal data safe and " * 6 + "delete it.")
    original = CORPUS["format=flowed"]()
    out = apply_footer(original, long_footer).data
    assert out is not None
    text = text_of(parse(out))
    footer_lines = text.split("\n\n")[-1].rstrip("\n").split("\n")
    assert len(footer_lines) > 1 and all(len(line) <= 78 for line in footer_lines)
    assert all(line.endswith(" ") for line in footer_lines[:-1])  # soft breaks
    assert not footer_lines[-1].endswith(" ")
    assert "wraps across lines." in text


def test_html_footer_goes_before_body_close_and_never_after_html_close() -> None:
    for shape in ("html only", "html without </body>"):
        _, out = _leaf_after(shape, FOOTERS["ascii"])
        html = text_of(parse(out))
        at = html.index("council-footer")
        assert at < html.lower().rindex("</html>")
        if "</body>" in html:
            assert at < html.lower().rindex("</body>")


def test_untouched_parts_keep_their_exact_bytes() -> None:
    original, out = _leaf_after("mixed with attachments", FOOTERS["ascii"])
    # Everything from the first attachment on is byte-for-byte the same.
    tail = original[original.index(b"Content-Type: application/pdf"):]
    assert tail in out
    head = original[:original.index(b"Content-Type: multipart/alternative")]
    assert out.startswith(head)


def test_calendar_part_is_left_alone() -> None:
    original, out = _leaf_after("calendar invitation", FOOTERS["ascii"])
    cal = [p for p in parse(out).walk() if p.get_content_type() == "text/calendar"]
    assert len(cal) == 1 and text_of(cal[0]).replace("\n", "\r\n") == ICS
    assert "privacy notice" not in text_of(cal[0])


def test_forwarded_message_inside_is_not_given_the_footer() -> None:
    original, out = _leaf_after("forward as message/rfc822", FOOTERS["ascii"])
    inner = parse(out).get_payload()[1]
    assert inner.get_content_type() == "message/rfc822"
    inner_text = inner.get_payload(0).get_content()
    assert "privacy notice" not in inner_text
    assert "original complaint" in inner_text


def test_apple_interleaved_text_gets_footer_in_its_last_text_part() -> None:
    _, out = _leaf_after("apple interleaved text and image", FOOTERS["ascii"])
    parts = parse(out).get_payload()
    assert len(parts) == 3
    assert "privacy notice" not in text_of(parts[0])
    assert "privacy notice" in text_of(parts[2])


@pytest.mark.parametrize("shape", ["unknown charset", "utf-8 label on latin-1 bytes",
                                   "bare pdf", "bare text/calendar"])
def test_bodies_that_cannot_be_changed_safely_are_wrapped_byte_for_byte(shape: str) -> None:
    original = CORPUS[shape]()
    result = apply_footer(original, FOOTERS["ascii"])
    assert result.outcome == "wrapped" and result.data is not None
    body = original[original.index(b"\r\n\r\n") + 4:]
    assert body + b"\r\n--" in result.data


def test_mixed_whose_body_cannot_be_decoded_gets_a_footer_part() -> None:
    original = CORPUS["mixed whose body cannot be decoded"]()
    out = apply_footer(original, FOOTERS["ascii"]).data
    assert out is not None
    parts = parse(out).get_payload()
    assert [p.get_content_type() for p in parts] == ["text/plain", "application/pdf",
                                                     "text/plain"]
    assert "privacy notice" in text_of(parts[2])
    assert original[:original.index(b"--b1--")] in out  # nothing before it changed


def test_a_client_footer_already_at_the_end_is_not_doubled() -> None:
    footer = FOOTERS["ascii"]
    # The client wrapped the footer differently; white space does not matter.
    body = "Dear resident,\n\n" + footer.text.replace("\n", " ").replace(". ", ".\n  ") + "\n\n"
    assert apply_footer(to_bytes(plain(body)), footer).outcome == "present"


def test_footer_in_the_middle_of_the_text_does_not_count() -> None:
    footer = FOOTERS["ascii"]
    body = footer.text + "\n\nP.S. one more thing.\n"
    out = apply_footer(to_bytes(plain(body)), footer).data
    assert out is not None
    assert text_of(parse(out)).count("privacy notice at") == 2
