"""The footer filter and its [footer] section (Kirkham rule 11 on the outbound side)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.assembly import BY_NAME, FILTERS, assemble, default_chain, parse_config
from gateway.config import ConfigError
from gateway.filters.footer import FooterFilter
from gateway.mime.footer import Footer
from gateway.pipeline import Stage
from gateway.verdicts import Action
from tests.footer_support import config_text, parse, text_of
from tests.policykit import build, check, context

MESSAGE = (b"From: Clerk <clerk@stanion-pc.gov.uk>\r\nTo: r@example.org\r\nSubject: Hall\r\n"
           b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
           b"The hall is booked.\r\n")
SIGNED = (b"From: clerk@stanion-pc.gov.uk\r\nSubject: s\r\nMIME-Version: 1.0\r\n"
          b'Content-Type: multipart/signed; protocol="application/pkcs7-signature"; '
          b'micalg=sha-256; boundary="s"\r\n\r\n--s\r\nContent-Type: text/plain\r\n\r\nHi\r\n'
          b"--s\r\nContent-Type: application/pkcs7-signature\r\n\r\nAAAA\r\n--s--\r\n")


def test_a_finishing_step_of_the_outbound_side_only_before_trace_and_dkim() -> None:
    entry = BY_NAME["footer"]
    assert entry.sides == ("outbound",) and entry.stage is Stage.FINISH
    assert [f.name for f in FILTERS if f.stage is Stage.FINISH] == ["footer", "trace", "dkim"]
    assert "footer" in default_chain("outbound") and "footer" not in default_chain("inbound")


def test_shipped_default_footer_names_uk_gdpr_and_the_privacy_notice(tmp_path: Path) -> None:
    flt = build(parse_config(config_text(tmp_path)), "footer")
    assert isinstance(flt, FooterFilter)
    assert "UK General Data Protection Regulation" in flt.footer.text
    assert "privacy-notice" in flt.footer.text
    assert flt.footer.html_norm == flt.footer.text_norm  # both files say the same thing
    assert flt.signed == "wrap"


async def test_adds_the_footer_and_says_so() -> None:
    flt = FooterFilter(Footer("Privacy notice: https://example.org/privacy"))
    first = await check(flt, context(MESSAGE))
    change = first.report.change
    assert change is not None and change.new_bytes is not None
    assert text_of(parse(change.new_bytes)).endswith(
        "The hall is booked.\n\nPrivacy notice: https://example.org/privacy\n")
    assert first.codes == ["footer.added"] and first.action is Action.DELIVER
    again = await check(flt, context(change.new_bytes))
    assert again.report.change is None and again.codes == ["footer.present"]
    assert again.action is Action.DELIVER


async def test_large_messages_are_handled_too() -> None:
    big = MESSAGE + b"x" * 70 + b"\r\n" * 1 + (b"line of text\r\n" * 30000)
    report = await FooterFilter(Footer("Privacy notice.")).check(context(big))
    assert report.change is not None and report.change.new_bytes is not None
    assert report.change.new_bytes.endswith(b"line of text\r\n\r\nPrivacy notice.\r\n")


@pytest.mark.parametrize("signed,changed,code,action", [
    ("wrap", True, "footer.signed-wrapped", Action.DELIVER),
    ("skip", False, "footer.signed-skipped", Action.DELIVER),
    ("reject", False, "footer.signed-rejected", Action.REFUSE),
])
async def test_signed_mail_setting(signed: str, changed: bool, code: str,
                                   action: Action) -> None:
    checked = await check(FooterFilter(Footer("Privacy notice."), signed), context(SIGNED))
    assert (checked.report.change is not None) is changed
    assert checked.codes == [code]
    assert checked.action is action
    if action is Action.REFUSE:
        assert checked.decision.smtp is not None
        assert (checked.decision.smtp.code, checked.decision.smtp.enhanced) == (554, "5.7.1")
        assert "signed or encrypted" in checked.decision.text


def test_own_text_file_gets_an_html_form_made_from_it(tmp_path: Path) -> None:
    (tmp_path / "notice.txt").write_text("Our notice: see <https://example.org/p> & more.\n")
    config = parse_config(config_text(tmp_path, f"""
[footer]
text_file = "{tmp_path}/notice.txt"
signed = "skip"
"""))
    flt = build(config, "footer")
    assert isinstance(flt, FooterFilter)
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
""")), "footer")
    assert isinstance(flt, FooterFilter)
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
    # would be refused.
    from tests.conftest import build_config

    config = build_config(tmp_path, {"outbound": {"filters": ["confidential", "footer"]},
                                     "policy": {"confidential": "refuse"}})
    pipeline = assemble(config).pipelines["outbound"]
    assert pipeline.names == ["confidential", "footer"]
    body = "The hall is booked." if subtype == "plain" else \
        "<html><body><p>The hall is booked.</p></body></html>"
    msg = MESSAGE.replace(b"text/plain", f"text/{subtype}".encode()).replace(
        b"The hall is booked.", body.encode())
    first = await pipeline.run(context(msg))
    assert first.decision.action is Action.DELIVER and b"privacy notice" in first.data
    assert "footer.added" in [f.code for f in first.findings]
    # The footered message, sent on or quoted.
    again = await pipeline.run(context(first.data))
    assert again.decision.action is Action.DELIVER, again.decision
    assert not [f for f in again.findings if f.filter == "confidential"]
