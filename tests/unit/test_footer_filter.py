"""The footer filter and its [footer] section (Kirkham rule 11 on the outbound side)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, parse_config
from gateway.filters import REGISTRY, default_chain
from gateway.filters.footer import FooterFilter, build
from gateway.mime.footer import Footer
from gateway.verdicts import Accept, Modify, Reject
from tests.footer_support import config_text, outbound_context, parse, text_of

MESSAGE = (b"From: Clerk <clerk@stanion-pc.gov.uk>\r\nTo: r@example.org\r\nSubject: Hall\r\n"
           b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
           b"The hall is booked.\r\n")
SIGNED = (b"From: clerk@stanion-pc.gov.uk\r\nSubject: s\r\nMIME-Version: 1.0\r\n"
          b'Content-Type: multipart/signed; protocol="application/pkcs7-signature"; '
          b'micalg=sha-256; boundary="s"\r\n\r\n--s\r\nContent-Type: text/plain\r\n\r\nHi\r\n'
          b"--s\r\nContent-Type: application/pkcs7-signature\r\n\r\nAAAA\r\n--s--\r\n")


def test_registered_for_the_outbound_side_only_at_order_90() -> None:
    spec = REGISTRY["footer"]
    assert spec.sides == ("outbound",) and spec.order == 90
    assert "footer" in default_chain("outbound") and "footer" not in default_chain("inbound")


def test_shipped_default_footer_names_uk_gdpr_and_the_privacy_notice(tmp_path: Path) -> None:
    flt = build(parse_config(config_text(tmp_path)))
    assert "UK General Data Protection Regulation" in flt.footer.text
    assert "privacy-notice" in flt.footer.text
    assert flt.footer.html_norm == flt.footer.text_norm  # both files say the same thing
    assert flt.signed == "wrap"


async def test_adds_the_footer_and_says_so() -> None:
    flt = FooterFilter(Footer("Privacy notice: https://example.org/privacy"))
    verdict = await flt.check(outbound_context(MESSAGE))
    assert isinstance(verdict, Modify) and verdict.new_bytes is not None
    assert text_of(parse(verdict.new_bytes)).endswith(
        "The hall is booked.\n\nPrivacy notice: https://example.org/privacy\n")
    assert [f.code for f in verdict.findings] == ["added"]
    again = await flt.check(outbound_context(verdict.new_bytes))
    assert isinstance(again, Accept) and again.findings[0].code == "present"


async def test_large_messages_are_handled_too() -> None:
    big = MESSAGE + b"x" * 70 + b"\r\n" * 1 + (b"line of text\r\n" * 30000)
    verdict = await FooterFilter(Footer("Privacy notice.")).check(outbound_context(big))
    assert isinstance(verdict, Modify) and verdict.new_bytes is not None
    assert verdict.new_bytes.endswith(b"line of text\r\n\r\nPrivacy notice.\r\n")


@pytest.mark.parametrize("policy,kind,code", [
    ("wrap", Modify, "signed-wrapped"),
    ("skip", Accept, "signed-skipped"),
    ("reject", Reject, "signed"),
])
async def test_signed_mail_policy(policy: str, kind: type, code: str) -> None:
    verdict = await FooterFilter(Footer("Privacy notice."), policy).check(
        outbound_context(SIGNED))
    assert isinstance(verdict, kind)
    assert verdict.findings[0].code == code
    if isinstance(verdict, Reject):
        assert verdict.code == 554 and verdict.enhanced == "5.7.1"
        assert "signed or encrypted" in verdict.text


def test_own_text_file_gets_an_html_form_made_from_it(tmp_path: Path) -> None:
    (tmp_path / "notice.txt").write_text("Our notice: see <https://example.org/p> & more.\n")
    config = parse_config(config_text(tmp_path, f"""
[footer]
text_file = "{tmp_path}/notice.txt"
signed = "skip"
"""))
    flt = build(config)
    assert flt.signed == "skip"
    assert "&lt;<a href=\"https://example.org/p\">https://example.org/p</a>&gt; &amp; more" \
        in flt.footer.html
    assert flt.footer.html_norm == flt.footer.text_norm


def test_own_html_file_is_used_as_written(tmp_path: Path) -> None:
    (tmp_path / "n.txt").write_text("Notice.\n")
    (tmp_path / "n.html").write_text("<p><b>Notice.</b></p>\n")
    flt = build(parse_config(config_text(tmp_path, f"""
[footer]
text_file = "{tmp_path}/n.txt"
html_file = "{tmp_path}/n.html"
""")))
    assert flt.footer.html == "<p><b>Notice.</b></p>"


@pytest.mark.parametrize("section,expected", [
    ('text_file = "/nonexistent/footer.txt"',
     'footer.text_file (line 20): the file "/nonexistent/footer.txt" does not exist'),
    ('signed = "sometimes"',
     'footer.signed (line 20): "sometimes" is not one of the allowed values: "wrap", "skip", '
     '"reject"'),
    ('text_fle = "x"', 'footer.text_fle (line 20): is not a setting the gateway knows; '
                       'did you mean "text_file"?'),
    ('text_file = "{tmp}/empty.txt"',
     "footer.text_file (line 20): the footer text is empty; write the privacy notice in it"),
])
def test_config_problems_are_reported_with_key_and_line(
        tmp_path: Path, section: str, expected: str) -> None:
    (tmp_path / "empty.txt").write_text("\n  \n")
    text = config_text(tmp_path, "\n[footer]\n" + section.format(tmp=tmp_path) + "\n")
    assert text.splitlines()[19].startswith(section.split()[0])
    with pytest.raises(ConfigError) as err:
        parse_config(text)
    assert expected in [str(p) for p in err.value.problems]


@pytest.mark.parametrize("subtype", ["plain", "html"])
async def test_shipped_footer_is_not_taken_for_confidential_content(
        tmp_path: Path, subtype: str) -> None:
    # The notice says "personal data", a confidentiality marker; it must read as a notice
    # (its "received this e-mail in error" makes it boilerplate), or every reply quoting it
    # would be flagged.
    from gateway.pipeline import Pipeline
    from tests.conftest import build_config

    config = build_config(tmp_path, {"outbound": {"filters": ["confidential", "footer"]},
                                     "confidential": {"action": "reject"}})
    body = "The hall is booked." if subtype == "plain" else \
        "<html><body><p>The hall is booked.</p></body></html>"
    msg = MESSAGE.replace(b"text/plain", f"text/{subtype}".encode()).replace(
        b"The hall is booked.", body.encode())
    first = outbound_context(msg)
    result = await Pipeline(config, "outbound").run(first)
    assert isinstance(result.verdict, Accept) and b"privacy notice" in first.data
    again = outbound_context(first.data)  # the footered message, sent on or quoted
    result = await Pipeline(config, "outbound").run(again)
    assert isinstance(result.verdict, Accept), result.verdict
    assert not [f for f in again.findings if f.filter == "confidential"]
