"""A held message made safe to read: headers, the body as plain text, and the attachment list.

Nothing in the message is opened, run or fetched: attachments are only named and measured; HTML is
reduced to text after scripts, styles, frames, forms and hidden elements are removed; images
(including one-pixel trackers) become a short note naming where they would have been loaded from;
and control characters that could drive a terminal (escape sequences) or reorder text (bidi
overrides) are shown as visible escapes. The command line uses :func:`format_view`; the web page
can use :func:`view` and render the same parts itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import EmailMessage, Message
from email.parser import BytesParser
from urllib.parse import urlsplit

import html2text
from bs4 import BeautifulSoup, Tag

from gateway.mime.headers import SHOWING_POLICY
from gateway.rules.wording import human_size, show_hidden

__all__ = ["AttachmentInfo", "HeldView", "format_view", "html_for_reading", "view"]

SHOWN_HEADERS = ("Date", "From", "Sender", "Reply-To", "To", "Cc", "Subject", "Message-ID",
                 "List-Id", "Authentication-Results")
MAX_BODY = 100_000

@dataclass(frozen=True)
class AttachmentInfo:
    name: str
    content_type: str
    size: int  # bytes, decoded


@dataclass(frozen=True)
class HeldView:
    headers: tuple[tuple[str, str], ...]
    body: str
    body_type: str  # "text/plain", "text/html" (shown as text) or "" (no readable text)
    attachments: tuple[AttachmentInfo, ...]
    notes: tuple[str, ...] = ()


_DROP = ("script", "style", "head", "iframe", "frame", "frameset", "object", "embed", "applet",
         "form", "input", "button", "select", "textarea", "noscript", "template", "svg", "math",
         "link", "meta", "base", "audio", "video", "source", "canvas")
_HIDDEN_STYLE = re.compile(
    r"display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*0(?![.\d]*[1-9])|"
    r"opacity\s*:\s*0(?![.\d]*[1-9])|max-height\s*:\s*0(?![.\d]*[1-9])", re.I)


def _host(url: str) -> str:
    try:
        return urlsplit(url.strip()).hostname or ""
    except ValueError:
        return ""


def _tiny(img: Tag) -> bool:
    for attr in ("width", "height"):
        value = str(img.get(attr, "")).strip().rstrip("px")
        if value.isdigit() and int(value) <= 2:
            return True
    return bool(re.search(r"(width|height)\s*:\s*[012]px", str(img.get("style", "")), re.I))


def html_for_reading(html: str) -> tuple[str, list[str]]:
    """The readable text of an HTML part, and notes about what was left out."""
    soup = BeautifulSoup(html, "html.parser")
    notes: list[str] = []
    dropped = 0
    for tag in soup.find_all(_DROP):
        tag.decompose()
        dropped += 1
    if dropped:
        notes.append(f"{dropped} script, style, frame or form element(s) removed")
    hidden = 0
    for tag in soup.find_all(True):
        if tag.decomposed:
            continue
        if tag.has_attr("hidden") or _HIDDEN_STYLE.search(str(tag.get("style", ""))):
            hidden += len(tag.get_text())
            tag.decompose()
    if hidden:
        notes.append(f"hidden text of {hidden} characters not shown")
    trackers = 0
    for img in soup.find_all("img"):
        src = str(img.get("src", ""))
        host = _host(src)
        if _tiny(img):
            trackers += 1
            img.decompose()
            continue
        alt = " ".join(str(img.get("alt", "")).split())
        where = f"not loaded from {host}" if host else "embedded, not shown"
        img.replace_with(f"[image{': ' + alt if alt else ''} ({where})]")
    if trackers:
        notes.append(f"{trackers} tracking image(s) removed")
    for a in soup.find_all("a"):
        href = str(a.get("href", "")).strip()
        text = a.get_text(" ", strip=True)
        if href and not href.startswith("#") and href != text:
            a.replace_with(f"{text} <{href}>" if text else f"<{href}>")
        else:
            a.unwrap()
    converter = html2text.HTML2Text()
    converter.body_width = 0
    converter.ignore_images = True
    converter.ignore_links = True
    converter.ignore_emphasis = True
    converter.ignore_tables = True
    converter.unicode_snob = True
    text = converter.handle(str(soup))
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n", notes


def _content(part: Message) -> str:
    try:
        value = part.get_content() if isinstance(part, EmailMessage) else part.get_payload()
        if isinstance(value, str):
            return value
    except Exception:
        pass
    raw = part.get_payload(decode=True)
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else ""


def _attachments(msg: Message) -> list[AttachmentInfo]:
    out = []
    body_parts = set()
    if isinstance(msg, EmailMessage):
        body = msg.get_body(preferencelist=("plain", "html"))
        if body is not None:
            body_parts.add(id(body))
    for part in msg.walk():
        ctype = part.get_content_type()
        if (part.is_multipart() and ctype != "message/rfc822") or id(part) in body_parts:
            continue
        if part.get_content_maintype() == "text" and part.get_content_disposition() is None:
            continue
        try:
            name = part.get_filename() or ""
        except Exception:
            name = ""
        if ctype == "message/rfc822":
            size = len(part.as_bytes()) if part.is_multipart() else 0
        else:
            payload = part.get_payload(decode=True)
            size = len(payload) if isinstance(payload, bytes) else 0
        out.append(AttachmentInfo(show_hidden(name) or "(no name)", show_hidden(ctype), size))
    return out


def view(data: bytes) -> HeldView:
    """Read a held message without opening anything in it."""
    msg = BytesParser(policy=SHOWING_POLICY).parsebytes(data)
    headers = []
    for name in SHOWN_HEADERS:
        for value in msg.get_all(name, []) or []:
            try:
                text = " ".join(str(value).split())
            except Exception:
                text = "(unreadable)"
            headers.append((name, show_hidden(text)))
    notes: list[str] = []
    body, body_type = "", ""
    assert isinstance(msg, EmailMessage)
    part = msg.get_body(preferencelist=("plain", "html"))
    if part is not None:
        body_type = part.get_content_type()
        text = _content(part)[:MAX_BODY * 4]
        if body_type == "text/html":
            text, notes = html_for_reading(text)
        if len(text) > MAX_BODY:
            text = text[:MAX_BODY]
            notes.append(f"only the first {MAX_BODY} characters are shown")
        body = show_hidden(text)
        if body_type == "text/plain" and any(
                p.get_content_type() == "text/html" and p.get_content_disposition() is None
                for p in msg.walk()):
            notes.append("the message also has an HTML version; the plain text is shown")
    return HeldView(tuple(headers), body, body_type, tuple(_attachments(msg)), tuple(notes))


def format_view(v: HeldView, meta: list[tuple[str, str]] | None = None) -> str:
    """The view as plain text for a terminal (every part already cleaned)."""
    lines = []
    for name, value in meta or []:
        lines.append(f"{name}: {show_hidden(value)}")
    if meta:
        lines.append("")
    lines += [f"{name}: {value}" for name, value in v.headers]
    lines.append("")
    if v.attachments:
        lines.append(f"Attachments ({len(v.attachments)}, not opened):")
        lines += [f"  - {a.name}  ({a.content_type}, {human_size(a.size)})" for a in v.attachments]
    else:
        lines.append("Attachments: none")
    lines.append("")
    shown = {"text/html": "the HTML part, shown as plain text", "text/plain": "plain text"}
    lines.append(f"--- Message text ({shown.get(v.body_type, 'none readable')}) ---")
    lines += [f"[{n}]" for n in v.notes]
    lines.append(v.body.rstrip("\n") if v.body else "(no text)")
    lines.append("--- End of message text ---")
    return "\n".join(lines) + "\n"
