"""The footer on the odd real-world messages CPython tests its email package with.

The messages are read where the running Python installs its own test package
(test/test_email/data/msg_*.txt beside the standard library); the project keeps no copy.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from gateway.mime.footer import apply_footer
from tests.footer_support import FOOTERS, check_invariants, crlf, parse


def stdlib_email_data() -> Path | None:
    """The folder of CPython's email test messages for this interpreter, if it has one."""
    try:
        spec = importlib.util.find_spec("test.test_email")
    except ImportError:  # no test package at all
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        data = Path(location) / "data"
        if any(data.glob("msg_*.txt")):
            return data
    return None


DATA = stdlib_email_data()
FILES = sorted(p.name for p in DATA.glob("msg_*.txt")) if DATA else []
MISSING = (
    f"CPython's email test messages (test/test_email/data/msg_*.txt) are not installed for "
    f"{sys.executable} (Python {sys.version.split()[0]}). On Debian: apt-get install "
    f"libpython{sys.version_info.major}.{sys.version_info.minor}-testsuite "
    f"(scripts/setup --test installs it); elsewhere, use a Python build that ships its test "
    f"package."
)
# Debian 12's Python 3.11.2 ships 47 (msg_01 to msg_46 and msg_12a); later 3.11 releases add
# msg_47.txt. Every message that is there is checked.
AT_LEAST = 47
# When the messages are missing, one case stands in for them so that the tests fail, not skip.
CASES = FILES if FILES else [pytest.param("", id="messages-missing")]


def message(name: str) -> bytes:
    if DATA is None:
        pytest.fail(MISSING, pytrace=False)
    return crlf((DATA / name).read_bytes())


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
# PGP-signed: wrapped whole, the signed part untouched.
SIGNED = ["msg_33.txt", "msg_45.txt"]


@pytest.mark.parametrize("count", [len(FILES)], ids=lambda n: f"{n}-messages")
def test_the_corpus_is_there(count: int) -> None:
    if DATA is None:
        pytest.fail(MISSING, pytrace=False)
    print(f"checking the footer on {count} CPython test messages from {DATA}")
    assert count >= AT_LEAST, f"only {count} messages in {DATA}, expected {AT_LEAST} or more"
    named_here = (set(MALFORMED) | set(SIGNED)) - set(FILES)
    assert not named_here, f"{DATA} lacks {sorted(named_here)}, which these tests name"


@pytest.mark.parametrize("name", CASES)
def test_cpython_message_gets_the_footer_once(name: str) -> None:
    footer = FOOTERS["intl"]
    original = message(name)
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


@pytest.mark.parametrize("name", SIGNED)
def test_pgp_signed_messages_are_wrapped_untouched(name: str) -> None:
    original = message(name)
    result = apply_footer(original, FOOTERS["ascii"])
    assert result.outcome == "signed-wrapped" and result.data is not None
    assert original[original.index(b"\r\n\r\n") + 4:] in result.data
