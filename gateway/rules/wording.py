"""Putting what the gateway found into words: one notation for hidden characters, ASCII for
SMTP replies, and lists of what matched where.

Everything a person reads about a message goes through :func:`show_hidden`, so a character that
is invisible or reorders text (a bidi override in ``invoice\u202efdp.exe``) always appears the
same way, as ``<U+202E>``, on the clerk's page, in the digest, in the log and in replies.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "MAX_REPLY_TEXT",
    "Hit",
    "ascii_safe",
    "describe",
    "display_name",
    "group_hits",
    "human_size",
    "one_line",
    "reply_text",
    "show_hidden",
]

# Invisible or text-reordering characters, plus the C0/C1 controls (escape sequences).
_HIDDEN = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028\u2029\u202a-\u202e"
    "\u2060-\u2069\ufeff\ufff9-\ufffb]")


def show_hidden(text: str) -> str:
    """Hidden and control characters as ``<U+XXXX>``; line ends kept as ``\\n``."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _HIDDEN.sub(lambda m: f"<U+{ord(m.group(0)):04X}>", text)


def one_line(text: str, limit: int = 200) -> str:
    """A value from a message, safe to quote in a sentence: hidden characters shown, one line,
    at most ``limit`` characters."""
    text = " ".join(show_hidden(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def human_size(n: int) -> str:
    """``1536`` -> "1.5 KB": sizes as a person reads them."""
    if n < 1024:
        return f"{n} bytes"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n / 1048576:.1f} MB"


def display_name(name: str, limit: int = 80) -> str:
    """A file name safe to show: hidden characters made visible, length bounded."""
    out = show_hidden(name.strip()).replace("\n", "<U+000A>")
    return out if len(out) <= limit else out[: limit - 3] + "..."


def ascii_safe(text: str) -> str:
    """Plain ASCII on one line, for SMTP replies and header fields: "Café" -> "Cafe",
    typographic quotes as typed ones, anything else as "?"."""
    text = text.replace("\u2026", "...").replace("\u2019", "'").replace("\u2018", "'")
    text = text.replace("\u201c", '"').replace("\u201d", '"')
    plain = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in plain if not unicodedata.combining(c))
    return " ".join(plain.encode("ascii", "replace").decode("ascii").split())


@dataclass(frozen=True)
class Hit:
    what: str  # 'the phrase "personal data"', 'a National Insurance number'
    where: str  # 'the message text', 'the attachment "minutes.docx"'

    def __str__(self) -> str:
        return f"{self.what} in {self.where}"


def group_hits(hits: Iterable[Hit]) -> list[tuple[str, list[str]]]:
    """[(what, [where, ...])] in the order first seen, each place once."""
    grouped: dict[str, list[str]] = {}
    for hit in hits:
        places = grouped.setdefault(hit.what, [])
        if hit.where not in places:
            places.append(hit.where)
    return list(grouped.items())


def _and(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def describe(hits: Iterable[Hit], limit: int = 4) -> str:
    """'the phrase "x" in the Subject and the message text; a PIN in the attachment "a.pdf"'."""
    groups = group_hits(hits)
    parts = [f"{what} in {_and(places[:3])}" + (
        f" and {len(places) - 3} more places" if len(places) > 3 else "")
        for what, places in groups[:limit]]
    more = len(groups) - limit
    text = "; ".join(parts)
    if more > 0:
        text += f"; and {more} more"
    return text


# An SMTP reply line is at most 512 octets (RFC 5321 4.5.3.1.5), "550 5.7.1 " and CRLF included.
MAX_REPLY_TEXT = 480


def reply_text(what: str, advice: str, limit: int = MAX_REPLY_TEXT) -> str:
    """``what`` then ``advice`` in one reply line; ``what`` is shortened if the line is too long.

    The advice (what to do) is never cut: it is the part the sender needs.
    """
    what, advice = ascii_safe(what), ascii_safe(advice)
    room = limit - len(advice) - 1
    if len(what) > room:
        what = what[: max(room - 4, 0)].rstrip() + " ..."
    return f"{what} {advice}"
