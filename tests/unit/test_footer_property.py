"""Property: for any MIME tree a client could send, the footer keeps every promise
(Kirkham rule 11: every e-mail sent carries the privacy notice, once)."""

from __future__ import annotations

from email.message import EmailMessage

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.mime.footer import apply_footer
from tests.footer_support import FOOTERS, check_invariants, to_bytes

WORDS = st.text(
    alphabet=st.sampled_from(list("abcdefghij klmnopqrstuvwxyz ABC.,;:!?-'\"<>&=")
                             + list("\u00e9\u00fc\u00a3\u00e7\u20ac\u2019\u2013\u0416\u3042")),
    min_size=0, max_size=60)
# Lines start with a letter: a body ending in ">" lines is a reply, where the footer goes above
# the quote (tested in test_footer_replies.py).
LINES = st.lists(WORDS, min_size=0, max_size=8).map(
    lambda ls: "\n".join("w" + line for line in ls) + "\n")
CHARSETS = ("us-ascii", "iso-8859-1", "windows-1252", "koi8-r", "utf-8")


def _charset_for(text: str, wanted: str) -> str:
    for charset in (wanted, "utf-8"):
        try:
            text.encode(charset)
            return charset
        except UnicodeEncodeError:
            continue
    return "utf-8"


@st.composite
def text_leaf(draw: st.DrawFn, subtype: str | None = None) -> EmailMessage:
    subtype = subtype or draw(st.sampled_from(["plain", "html"]))
    text = draw(LINES)
    if subtype == "html":
        shell = draw(st.sampled_from(["<html><body>{}</body></html>", "<html>{}</html>", "{}",
                                      "<div>{}</div>\n"]))
        text = shell.format("".join(f"<p>{line}</p>" for line in text.split("\n")))
    charset = _charset_for(text, draw(st.sampled_from(CHARSETS)))
    ctes = ["7bit", "quoted-printable", "base64"] if text.isascii() else [
        "8bit", "quoted-printable", "base64"]
    part = EmailMessage()
    params = {"format": "flowed"} if subtype == "plain" and draw(st.booleans()) else {}
    part.set_content(text, subtype=subtype, charset=charset, cte=draw(st.sampled_from(ctes)),
                     params=params)
    return part


@st.composite
def attachment(draw: st.DrawFn) -> EmailMessage:
    part = EmailMessage()
    kind = draw(st.sampled_from(["pdf", "png", "calendar", "rfc822", "txt"]))
    if kind == "calendar":
        part.set_content("BEGIN:VCALENDAR\nEND:VCALENDAR\n", subtype="calendar")
    elif kind == "rfc822":
        inner = draw(text_leaf("plain"))
        inner["Subject"] = "forwarded"
        part.set_content(inner)
    elif kind == "txt":
        part.set_content(draw(LINES), filename="notes.txt", disposition="attachment")
    else:
        main, sub = ("application", "pdf") if kind == "pdf" else ("image", "png")
        part.set_content(draw(st.binary(max_size=300)), maintype=main, subtype=sub,
                         filename=f"file.{sub}", cid=f"<{draw(st.integers(0, 999))}@x>")
    return part


def multipart(subtype: str, children: list[EmailMessage]) -> EmailMessage:
    part = EmailMessage()
    part["Content-Type"] = f"multipart/{subtype}"
    part.set_payload(children)
    return part


def trees(depth: int) -> st.SearchStrategy[EmailMessage]:
    leaf = text_leaf()
    if depth == 0:
        return leaf
    sub = trees(depth - 1)
    alternative = st.lists(text_leaf(), min_size=1, max_size=3).map(
        lambda parts: multipart("alternative", parts))
    related = st.tuples(text_leaf("html"), st.lists(attachment(), min_size=1, max_size=2)).map(
        lambda t: multipart("related", [t[0], *t[1]]))
    mixed = st.tuples(st.one_of(sub, alternative, related),
                      st.lists(st.one_of(attachment(), text_leaf()), max_size=3)).map(
        lambda t: multipart("mixed", [t[0], *t[1]]))
    return st.one_of(leaf, alternative, related, mixed, attachment())


def message(tree: EmailMessage) -> bytes:
    tree["From"] = "Clerk <clerk@stanion-pc.gov.uk>"
    tree["To"] = "resident@example.org"
    tree["Subject"] = "Parish matters"
    if "MIME-Version" not in tree:
        tree["MIME-Version"] = "1.0"
    return to_bytes(tree)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=trees(2), footer_name=st.sampled_from(sorted(FOOTERS)))
def test_any_mime_tree_gets_the_footer_once_and_keeps_everything_else(
        tree: EmailMessage, footer_name: str) -> None:
    footer = FOOTERS[footer_name]
    original = message(tree)
    result = apply_footer(original, footer)
    assert result.outcome in ("added", "wrapped")
    assert result.data is not None
    check_invariants(original, result.data, footer)
