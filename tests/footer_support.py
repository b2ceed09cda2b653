"""Shared checks for the footer tests: what must hold for every message the footer touches."""

from __future__ import annotations

import email.policy
import re
from email.message import EmailMessage, Message
from email.parser import BytesParser

from gateway.mime.footer import Footer, add_footer
from gateway.mime.replies import html_visible_text, normalise

# A footer that no charset but UTF-8 holds whole: en dash and curly quotes are not in ISO-8859-1,
# the pound sign and e-acute are.
INTL_TEXT = (
    "Test Parish Council \u2013 privacy notice\n"
    "We handle personal data under the UK GDPR. \u2018Caf\u00e9\u2019 costs \u00a35.\n"
    "Read our privacy notice at https://example.org/privacy-notice"
)
ASCII_TEXT = (
    "Test Parish Council - privacy notice\n"
    "We handle personal data under the UK GDPR and the Data Protection Act 2018.\n"
    "Read our privacy notice at https://example.org/privacy-notice"
)
FOOTERS = {"ascii": Footer(ASCII_TEXT), "intl": Footer(INTL_TEXT)}


def parse(data: bytes) -> EmailMessage:
    msg = BytesParser(policy=email.policy.SMTP).parsebytes(data)
    assert isinstance(msg, EmailMessage)
    return msg


def crlf(data: bytes) -> bytes:
    return re.sub(rb"\r?\n", b"\r\n", data)


def to_bytes(msg: EmailMessage) -> bytes:
    return msg.as_bytes(policy=email.policy.SMTP)


def leaves(msg: Message) -> list[Message]:
    """Leaf parts in order, not entering message/rfc822 (whose insides are its own bytes)."""
    if msg.get_content_maintype() == "multipart" and msg.is_multipart():
        out: list[Message] = []
        for part in msg.get_payload():
            out.extend(leaves(part))
        return out
    return [msg]


def decoded(part: Message) -> bytes:
    if part.get_content_maintype() == "message":
        return part.as_bytes() if not part.is_multipart() else bytes(part.get_payload(0))
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def text_of(part: Message) -> str:
    raw = decoded(part)
    charset = part.get_content_charset()
    if charset is None and part.get_content_type() == "text/html":
        m = re.search(rb"<meta[^>]+charset=[\"']?([A-Za-z0-9_-]+)", raw, re.IGNORECASE)
        charset = m.group(1).decode() if m else None
    charset = charset or "us-ascii"
    return raw.decode(charset, "replace").replace("\r\n", "\n")


def is_body_text(part: Message) -> bool:
    return (part.get_content_type() in ("text/plain", "text/html")
            and part.get_content_disposition() != "attachment"
            and not part.get_filename())


def ends_with(text: str, footer_norm: str) -> bool:
    norm = normalise(text)
    return norm == footer_norm or norm.endswith(" " + footer_norm)


def visible(part: Message) -> str:
    text = text_of(part)
    return html_visible_text(text) if part.get_content_type() == "text/html" else text


def check_invariants(original: bytes, out: bytes, footer: Footer, *,
                     placement: str = "end") -> None:
    """Everything the footer promises, for one message.

    ``placement`` "end": the human-readable bodies end with the footer; "anywhere": it is in them
    (replies, where it goes above the quoted history).
    """
    before, after = parse(original), parse(out)
    # Parses cleanly: no defects that were not there before.
    old_defects = {type(d) for p in before.walk() for d in p.defects}
    new_defects = {type(d) for p in after.walk() for d in p.defects}
    assert new_defects <= old_defects, new_defects - old_defects
    # No line over 998 bytes (plus CRLF) is produced.
    assert max(len(line) for line in out.split(b"\r\n")) <= 998
    # Headers kept: every original header field is still there with the same value, except
    # the MIME ones of a part that was re-encoded.
    for name, value in before.items():
        if not name.lower().startswith(("content-", "mime-version")):
            assert value in after.get_all(name, []), name
    # Every original leaf part survives in order; anything but a body text is byte-identical
    # after decoding, Content-ID included; a body text that changed is the old text with the
    # footer put in once, in its own form.
    new_leaves = leaves(after)
    changed: list[Message] = []
    i = 0
    for old in leaves(before):
        while i < len(new_leaves):
            new = new_leaves[i]
            i += 1
            if new.get_content_type() != old.get_content_type():
                continue
            if decoded(new) == decoded(old):
                assert new.get("content-id") == old.get("content-id")
                break
            if is_body_text(old):
                want = footer.html_norm if old.get_content_subtype() == "html" else \
                    footer.text_norm
                without = normalise(normalise(visible(new)).replace(want, " ", 1))
                assert without == normalise(visible(old)), (without, visible(old))
                changed.append(new)
                break
        else:
            raise AssertionError(f"part {old.get_content_type()} lost or changed")
    # A footer part (cases 2 and 3) ends the message, or the bodies carry it in their own form.
    last = new_leaves[-1]
    if (last.get_content_type() == "text/plain" and len(new_leaves) > len(leaves(before))
            and normalise(text_of(last)) == footer.text_norm):
        assert not changed
    else:
        assert changed, "no body was given the footer"
        for part in changed:
            text = visible(part)
            if placement == "end":
                want = footer.html_norm if part.get_content_subtype() == "html" else \
                    footer.text_norm
                assert ends_with(text, want), text[-300:]
            raw = text_of(part)
            if part.get_content_subtype() == "html":
                low = raw.lower()
                at = raw.find(footer.html[:20])
                assert at >= 0
                for close in ("</body", "</html"):
                    if close in low:
                        assert at < low.rfind(close)
            else:
                assert "<div" not in raw
        # Every alternative of a multipart/alternative that got it got it too.
        for alt in after.walk():
            if alt.get_content_type() != "multipart/alternative":
                continue
            forms = [p for p in alt.get_payload() if is_body_text(p)]
            hit = [p for p in forms if any(p is c for c in changed)]
            assert not hit or len(hit) == len(forms)
    # Twice adds nothing.
    assert add_footer(out, footer.text, footer.html, "wrap") is None


BASE_TOML = """
[gateway]
council_domains = ["stanion-pc.gov.uk", "stanion.org.uk"]
hostname = "mail.stanion-pc.gov.uk"
audit_log = "{tmp}/audit.jsonl"

[inbound]
listen = "127.0.0.1:0"
deliver_to = "maildir:{tmp}/mailbox"

[outbound]
listen = "127.0.0.2:0"
deliver_to = "maildir:{tmp}/outbox"
users_file = ""

[quarantine]
path = "{tmp}/quarantine"
"""


def config_text(tmp: object, extra: str = "") -> str:
    return BASE_TOML.format(tmp=tmp) + extra
