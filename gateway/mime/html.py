"""HTML read once, as a person sees it: its text and its links.

One parse with lxml's C parser, which lets go of the interpreter lock while it parses, and the
text taken from the tree by a small XSLT sheet, also in C: a worker thread reading a 4 MB
newsletter then keeps the event loop waiting for milliseconds, not the second that a parser
written in Python took (BeautifulSoup's, and a walk of the tree in Python). Junk's body text and
link check and the word checks' text all come from the same :class:`HtmlReading`.

The parser reads elements nested at most 255 deep and drops what lies deeper; such a page is no
person's. :attr:`HtmlReading.too_deep` says so, so that what could not be read is a finding,
never text passed over as clean.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from lxml import etree
from lxml import html as lxml_html

__all__ = ["HtmlReading", "Link", "html_to_text", "read_html"]

# Elements that start a new line of text; inline elements (b, span, a, ...) join their words.
BLOCKS = frozenset("""
    address article aside blockquote caption center dd details dialog div dl dt fieldset
    figcaption figure footer form h1 h2 h3 h4 h5 h6 header hr legend li main nav ol p pre
    section summary table tbody td tfoot th thead tr ul
""".split())
INVISIBLE = frozenset({"script", "style", "head", "template", "noscript", "object", "svg"})

# Text nodes are copied by XSLT's built-in rules; comments and processing instructions are not
# (the text after them is).
_SHEET = f"""<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
<xsl:output method="text" encoding="utf-8"/>
<xsl:template match="{'|'.join(sorted(INVISIBLE))}"/>
<xsl:template match="br"><xsl:text>&#10;</xsl:text></xsl:template>
<xsl:template match="{'|'.join(sorted(BLOCKS))}"><xsl:text>&#10;&#10;</xsl:text>
<xsl:apply-templates/><xsl:text>&#10;&#10;</xsl:text></xsl:template>
</xsl:stylesheet>""".encode()


@dataclass(frozen=True)
class Link:
    shown: str  # the link's text, its pieces joined by spaces
    href: str


@dataclass(frozen=True)
class HtmlReading:
    text: str  # block elements on lines of their own, blank lines between paragraphs
    links: tuple[Link, ...]  # every <a href>, in order
    too_deep: bool = False  # elements nested deeper than the parser reads were left out


class _PerThread(threading.local):
    # Neither lxml parsers nor XSLT objects may be used by two threads at once.
    def __init__(self) -> None:
        self.parser = lxml_html.HTMLParser()
        self.text = etree.XSLT(etree.XML(_SHEET))


_local = _PerThread()


def read_html(markup: str | bytes, *, links: bool = True) -> HtmlReading:
    """The text and (unless ``links`` is false) the links of an HTML document or fragment;
    empty for one that is not HTML."""
    if isinstance(markup, str):
        if not markup.strip():
            return HtmlReading("", ())
        if markup.lstrip().startswith("<?xml"):
            markup = markup.encode("utf-8")  # lxml refuses str with an encoding declaration
    elif not markup.strip():
        return HtmlReading("", ())
    local = _local
    try:
        root = lxml_html.document_fromstring(markup, parser=local.parser)
    except (etree.ParserError, ValueError):
        return HtmlReading("", ())
    too_deep = any(e.type == etree.ErrorTypes.ERR_RESOURCE_LIMIT
                   for e in local.parser.error_log)
    text = bytes(local.text(root)).decode("utf-8", "replace")
    found = tuple(Link(" ".join(s.strip() for s in a.itertext() if s.strip()), str(a.get("href")))
                  for a in root.iter("a") if links and a.get("href") is not None)
    return HtmlReading(_tidy(text), found, too_deep)


def html_to_text(markup: str | bytes) -> str:
    """The text a reader sees: tags dropped, block elements on lines of their own.

    Words split by inline tags (``con<b>fid</b>ential``) come out joined, as they are read; block
    elements are set apart by blank lines so that paragraphs stay paragraphs.
    """
    return read_html(markup, links=False).text


def _tidy(text: str) -> str:
    """Runs of spaces as one, no more than one blank line in a row, none at either end."""
    out: list[str] = []
    for line in text.split("\n"):
        line = " ".join(line.split())
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip()
