"""The council's footer in its two forms: the text the IT volunteer writes, and its HTML.

A footer compares by its words (white space normalised), so a message that already ends with it
in either form is recognised and never gets it twice.
"""

from __future__ import annotations

import html as html_lib
import re
from dataclasses import dataclass, field

from gateway.mime.replies import html_visible_text, normalise

__all__ = ["Footer", "html_from_text"]


def _clean_text(text: str) -> str:
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    return "\n".join(lines).strip("\n")


def html_from_text(text: str) -> str:
    """The HTML form of a plain-text footer: escaped, paragraphs kept, web addresses linked."""
    paragraphs = [p for p in re.split(r"\n\s*\n", _clean_text(text)) if p.strip()]

    def render(paragraph: str) -> str:
        lines = [html_lib.escape(line, quote=True) for line in paragraph.split("\n")]
        out = "<br>\n".join(lines)
        return re.sub(r"https?://[^\s<>&\"]+[^\s<>&\".,;:)]",
                      lambda m: f'<a href="{m.group(0)}">{m.group(0)}</a>', out)

    body = "\n".join(f"<p>{render(p)}</p>" for p in paragraphs)
    return ('<div class="council-footer" style="font-size:small;color:#555555;'
            f'border-top:1px solid #cccccc;margin-top:1em;padding-top:0.5em">\n{body}\n</div>')


@dataclass(frozen=True)
class Footer:
    """The footer in both forms. ``html`` empty: derived from ``text``."""

    text: str
    html: str = ""
    text_norm: str = field(init=False, repr=False)
    html_norm: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        text = _clean_text(self.text)
        html = self.html.strip() or html_from_text(text)
        object.__setattr__(self, "text", text)
        object.__setattr__(self, "html", html)
        object.__setattr__(self, "text_norm", normalise(text))
        object.__setattr__(self, "html_norm", normalise(html_visible_text(html)))
        if not self.text_norm:
            raise ValueError("the footer text is empty")
