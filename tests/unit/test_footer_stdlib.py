"""The footer on the odd real-world messages CPython tests its email package with."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.mime.footer import apply_footer
from tests.footer_support import FOOTERS, check_invariants, crlf, parse

DATA = Path(__file__).parent.parent / "data" / "cpython_email"
FILES = sorted(p.name for p in DATA.glob("msg_*.txt"))

# Broken multiparts the email package itself reads as flagged single parts (so there are no
# attachments to compare part by part): the footer must still be added without harm.
MALFORMED = {
    "msg_15.txt": "outer and inner multipart share one boundary",
    "msg_17.txt": "multipart/mixed without any boundary line",
    "msg_25.txt": "multipart/report whose boundary parameter is cut short",
    "msg_31.txt": "boundary lines do not match the boundary parameter",
    "msg_40.txt": "text/html with a boundary and text after </html>",
    "msg_41.txt": "multipart/alternative without a boundary parameter",
}


def test_the_corpus_is_there() -> None:
    assert len(FILES) == 48


@pytest.mark.parametrize("name", FILES)
def test_cpython_message_gets_the_footer_once(name: str) -> None:
    footer = FOOTERS["intl"]
    original = crlf((DATA / name).read_bytes())
    result = apply_footer(original, footer)
    assert result.data is not None
    if name not in MALFORMED:
        check_invariants(original, result.data, footer)
        return
    out = result.data
    before, after = parse(original), parse(out)
    assert {type(d) for p in after.walk() for d in p.defects} <= \
        {type(d) for p in before.walk() for d in p.defects} | {type(d) for d in before.defects}
    assert max(len(line) for line in out.split(b"\r\n")) <= 998
    assert footer.text_norm in " ".join(out.decode("utf-8", "replace").split()) or \
        b"privacy notice" in out
    body = original[original.index(b"\r\n\r\n") + 4:]
    if result.outcome == "wrapped":
        assert body in out
    assert apply_footer(out, footer).data is None


@pytest.mark.parametrize("name", ["msg_33.txt", "msg_45.txt"])
def test_pgp_signed_messages_are_wrapped_untouched(name: str) -> None:
    original = crlf((DATA / name).read_bytes())
    result = apply_footer(original, FOOTERS["ascii"])
    assert result.outcome == "signed-wrapped" and result.data is not None
    assert original[original.index(b"\r\n\r\n") + 4:] in result.data
