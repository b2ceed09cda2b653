"""Where the sender's own words end in a reply or a forward.

The footer belongs to the message being sent, so it goes right after the sender's own text: at the
very end of a new message or of a reply written below the quote, and just above the quoted history
of a reply or forward written on top of it. Quoted old footers stay inside the history where they
were and never count as this message's footer.

History is recognised by what mail clients write at its start:

* plain text: an Outlook ``-----Original Message-----`` line, a line of underscores followed by a
  ``From:`` line, a ``From:`` line followed by ``Sent:``/``Date:``, Gmail's ``---------- Forwarded
  message ---------``, Apple Mail's ``Begin forwarded message:``; or a block of ``>`` quoted lines
  that runs to the end, with its ``On ... wrote:`` line;
* HTML: Outlook's ``divRplyFwdMsg``/``appendonsend`` and its top-bordered header block (everything
  after them is history); Gmail's ``gmail_quote``, Thunderbird's ``moz-cite-prefix`` and
  ``<blockquote type="cite">``, after which the sender may still write (then the footer goes at
  the end).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser

__all__ = ["text_history_start", "html_layout", "HtmlLayout", "html_visible_text", "normalise"]

_TO_END = re.compile(
    r"^[ \t]*(?:-{2,}[ \t]*Original Message[ \t]*-{2,}"
    r"|-{2,}[ \t]*Forwarded message[ \t]*-{2,}"
    r"|Begin forwarded message:)[ \t]*$"
    # Outlook: a line of underscores, then the old message's From: line.
    r"|^[ \t]*_{10,}[ \t]*\n(?:[ \t]*\n)*[ \t]*\*?From:\*?[ \t]"
    # Outlook without the underscores: From: then Sent: (or Date:) on the next line.
    r"|^[ \t]*\*?From:\*?[ \t][^\n]*\n[ \t]*\*?(?:Sent|Date):\*?[ \t]",
    re.IGNORECASE | re.MULTILINE,
)
_ATTRIBUTION_END = re.compile(r"(?:wrote|writes|said):\s*$", re.IGNORECASE)


def normalise(text: str) -> str:
    """Collapse every run of white space to one space, for comparing text that clients rewrap."""
    return " ".join(text.split())


def _line_starts(text: str) -> list[int]:
    starts = [0]
    for m in re.finditer("\n", text):
        starts.append(m.end())
    return starts


def text_history_start(text: str) -> int | None:
    """Offset where the quoted history of a plain-text body starts, or None when there is none
    (the sender's text runs to the end). ``text`` uses ``\\n`` line breaks."""
    m = _TO_END.search(text)
    if m:
        return m.start()  # the patterns match from the start of a line
    # A quoted block that runs to the end: a reply written on top. Walk up from the last line;
    # only the trailing block is looked at, so long messages cost nothing here.
    lines: list[tuple[int, str]] = []  # (offset, line), last line first
    end = len(text)
    while True:
        start = text.rfind("\n", 0, max(end - 1, 0)) + 1 if end > 0 else 0
        line = text[start:end].rstrip("\n")
        lines.append((start, line))
        if line.strip() and not line.startswith(">"):
            break
        if start == 0:
            break
        end = start
    quoted = [(o, ln) for o, ln in lines if ln.strip()]
    if not quoted or not quoted[0][1].startswith(">"):
        return None
    # The first line of the block: the topmost quoted line (blank lines inside are part of it).
    block = [(o, ln) for o, ln in lines if ln.startswith(">")]
    first = block[-1][0]
    above = lines[-1][1]
    if above.strip() and not above.startswith(">") and _ATTRIBUTION_END.search(above):
        first = lines[-1][0]
        # Clients wrap a long "On <date>, <name> <address> wrote:" over two lines.
        if not above.lstrip().startswith("On ") and first > 0:
            prev_start = text.rfind("\n", 0, first - 1) + 1
            if text[prev_start:first].lstrip().startswith("On "):
                first = prev_start
    return first


# ----------------------------------------------------------------------------------- HTML

_VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
                   "source", "track", "wbr"})
_SKIP_TEXT = frozenset({"script", "style", "head", "title"})
# Tags that do not break a line of text: no space stands in for them.
_INLINE = frozenset({"a", "abbr", "b", "bdi", "bdo", "cite", "code", "em", "font", "i", "kbd",
                     "mark", "q", "s", "small", "span", "strong", "sub", "sup", "u", "var"})


def _classes(attrs: dict[str, str | None]) -> set[str]:
    return set((attrs.get("class") or "").split())


def _to_end_marker(tag: str, attrs: dict[str, str | None]) -> bool:
    if attrs.get("id") in ("divRplyFwdMsg", "appendonsend"):
        return True
    style = (attrs.get("style") or "").replace(" ", "").lower()
    return tag == "div" and ("border-top:solid#e1e1e1" in style
                             or "border-top:solid#b5c4df" in style)


def _element_marker(tag: str, attrs: dict[str, str | None]) -> bool:
    classes = _classes(attrs)
    if tag == "div" and classes & {"gmail_quote", "gmail_quote_container", "moz-cite-prefix",
                                   "yahoo_quoted"}:
        return True
    return tag == "blockquote" and (attrs.get("type") or "").lower() == "cite"


class _Scanner(HTMLParser):
    """Finds history markers (with where their elements end) and the visible text by offset."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.html = html
        self.starts = _line_starts(html)
        self.to_end: int | None = None
        self.first_element: int | None = None
        self.last_element_end: int | None = None
        self._open_tag: str | None = None
        self._depth = 0
        self._skip = 0
        self.text: list[tuple[int, str]] = []

    def _offset(self) -> int:
        line, col = self.getpos()
        return self.starts[line - 1] + col

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TEXT:
            self._skip += 1
        if tag not in _INLINE:
            self.text.append((self._offset(), " "))
        if tag in _VOID:
            return
        if self._open_tag is not None:
            if tag == self._open_tag:
                self._depth += 1
            return
        if self.to_end is not None:
            return
        d = dict(attrs)
        if _to_end_marker(tag, d):
            self.to_end = self._offset()
        elif _element_marker(tag, d):
            if self.first_element is None:
                self.first_element = self._offset()
            self._open_tag, self._depth = tag, 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.text.append((self._offset(), " "))

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TEXT and self._skip:
            self._skip -= 1
        pos = self._offset()
        if tag not in _INLINE:
            self.text.append((pos, " "))
        if self._open_tag == tag:
            self._depth -= 1
            if self._depth == 0:
                self._open_tag = None
                close = self.html.find(">", pos)
                self.last_element_end = len(self.html) if close < 0 else close + 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.text.append((self._offset(), data))


@dataclass(frozen=True)
class HtmlLayout:
    """What the footer code needs to know about an HTML body."""

    text: tuple[tuple[int, str], ...]  # visible text pieces by offset
    to_end: int | None  # start of history that runs to the end
    first_element: int | None  # start of the first quote element
    last_element_end: int | None  # end of the last top-level quote element

    def visible_text(self, begin: int = 0, stop: int | None = None) -> str:
        """The text a reader sees in ``html[begin:stop]`` (tags count as spaces)."""
        return "".join(t for pos, t in self.text if pos >= begin and (stop is None or pos < stop))

    def history_start(self, body_end: int) -> int | None:
        """Offset where the quoted history starts, or None when the footer goes at
        ``body_end`` (the offset of ``</body>``, or the end)."""
        if self.to_end is not None and (self.first_element is None
                                        or self.to_end < self.first_element):
            return self.to_end
        if self.first_element is None:
            return None
        end = self.last_element_end if self.last_element_end is not None else body_end
        if self.visible_text(end, body_end).strip():  # the sender wrote below the quote
            return None
        return self.first_element


def html_layout(html: str) -> HtmlLayout:
    """Scan an HTML body once for quote markers and visible text."""
    scanner = _Scanner(html)
    scanner.feed(html)
    scanner.close()
    return HtmlLayout(tuple(scanner.text), scanner.to_end, scanner.first_element,
                      scanner.last_element_end)


def html_visible_text(html: str) -> str:
    """The text a reader sees in an HTML fragment (tags count as spaces, entities decoded)."""
    return html_layout(html).visible_text()
