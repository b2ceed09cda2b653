"""The confidential filter (Stanion "Security" and "Email"; Kirkham rule 13) on real messages."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from gateway.config import ConfigError
from gateway.context import Envelope, MessageContext
from gateway.filters.confidential import HEADER, build
from gateway.verdicts import Accept, Modify, Quarantine, Reject, Verdict
from tests.conftest import build_config
from tests.documents import (
    DOCX,
    ODT,
    XLSX,
    as_bytes,
    make_docx,
    make_encrypted_pdf,
    make_odt,
    make_pdf,
    make_xlsx,
    message_with,
)

LABEL = "Restricted Distribution Private and Confidential"
CLLR = "cllr.smith@stanion-pc.gov.uk"
CLERK = "clerk@stanion-pc.gov.uk"


async def check(tmp_path: Path, msg: EmailMessage, *, rcpts: tuple[str, ...] = (CLERK,),
                direction: str = "outbound", sender: str = CLLR,
                settings: dict[str, Any] | None = None) -> tuple[Verdict, MessageContext]:
    config = build_config(tmp_path, {"confidential": settings or {}})
    ctx = MessageContext("t1", direction, Envelope(sender, list(rcpts)),  # type: ignore[arg-type]
                         as_bytes(msg))
    return await build(config).check(ctx), ctx


def header(verdict: Verdict) -> str:
    assert isinstance(verdict, Modify), verdict
    (name, value), = verdict.add_headers
    assert name == HEADER
    return value


# ----------------------------------------------------------------------- marker kinds

@pytest.mark.parametrize("body, what", [
    ("The attached is personal data.", 'the phrase "personal data"'),
    ("Item 7 will be taken as Part II business.", 'a mention of "Part II" (private) business'),
    ("Her NI number is AB 12 34 56 C.", "a National Insurance number"),
    ("Pay to sort code 12-34-56, account 12345678.", "a bank sort code and account number"),
])
async def test_each_marker_kind_in_the_body_is_flagged(tmp_path: Path, body: str,
                                                       what: str) -> None:
    verdict, _ = await check(tmp_path, message_with(body=body))
    assert header(verdict) == f"label=absent; found: {what} in the message text"
    assert verdict.findings[0].code == "marker"
    assert LABEL in verdict.findings[0].text


@pytest.mark.parametrize("msg, where", [
    (message_with(subject="Not for publication: staffing"), "the Subject"),
    (message_with(body="These notes are not\nfor publication.\n"), "the message text"),
    (message_with(html="<p>These notes are <b>not</b> for <span>pub</span>lication</p>"),
     "the message text (HTML)"),
    (message_with(attachments=(("Not for publication.png", b"\x89PNG", "image/png"),)),
     'the name of the attachment "Not for publication.png"'),
    (message_with(attachments=(("notes.docx", make_docx("Not for publication"), DOCX),)),
     'the attachment "notes.docx"'),
    (message_with(attachments=(("notes.odt", make_odt("Not for publication"), ODT),)),
     'the attachment "notes.odt"'),
    (message_with(attachments=(("notes.xlsx", make_xlsx([["Not for publication"]]), XLSX),)),
     'the attachment "notes.xlsx"'),
    (message_with(attachments=(("notes.pdf", make_pdf("Not for publication"),
                                "application/pdf"),)),
     'the attachment "notes.pdf"'),
])
async def test_markers_are_found_in_every_place(tmp_path: Path, msg: EmailMessage,
                                                where: str) -> None:
    verdict, _ = await check(tmp_path, msg)
    assert f'the phrase "not for publication" in {where}' in header(verdict)


async def test_identifiers_inside_office_files(tmp_path: Path) -> None:
    msg = message_with(attachments=(
        ("staff.xlsx", make_xlsx([["Name", "NI"], ["Jo Bloggs", "JT 98 76 54 D"]]), XLSX),
        ("pay.docx", make_docx("Bank details", table=[["Sort code", "40-11-62"],
                                                      ["Account", "71234567"]]), DOCX),
    ))
    value = header((await check(tmp_path, msg))[0])
    assert 'a National Insurance number in the attachment "staff.xlsx"' in value
    assert 'a bank sort code and account number in the attachment "pay.docx"' in value


# ----------------------------------------------------------------------- the label

async def test_labelled_message_with_markers_to_council_passes(tmp_path: Path) -> None:
    msg = message_with(subject=f"{LABEL}: staffing", body="personal data of the clerk\n")
    verdict, ctx = await check(tmp_path, msg)
    assert isinstance(verdict, Accept)
    assert [f.code for f in verdict.findings] == ["labelled"]  # recorded in the audit log
    assert ctx.notices == []


async def test_labelled_message_without_markers_passes_untouched(tmp_path: Path) -> None:
    msg = message_with(body=f"{LABEL}\n\nDear all, the meeting moves to Thursday.\n")
    verdict, ctx = await check(tmp_path, msg, settings={"notify_sender": True})
    assert verdict == Accept()
    assert ctx.notices == []


async def test_label_at_the_top_of_the_body_counts(tmp_path: Path) -> None:
    msg = message_with(html=f"<p><b>{LABEL.upper()}</b></p><p>personal data</p>",
                       body=f"{LABEL.upper()}\n\npersonal data\n")
    assert isinstance((await check(tmp_path, msg))[0], Accept)


async def test_label_lower_down_does_not_count(tmp_path: Path) -> None:
    msg = message_with(body=f"Dear all,\n\nPlease read.\nThanks\n\n{LABEL}\n")
    value = header((await check(tmp_path, msg))[0])
    assert value == ('label=absent; found: the phrase "private and confidential" in the message '
                     "text")


async def test_labelled_mail_outside_the_council_is_flagged(tmp_path: Path) -> None:
    msg = message_with(subject=f"{LABEL} - staffing", body="personal data\n")
    verdict, _ = await check(tmp_path, msg, rcpts=(CLERK, "friend@example.org"),
                             settings={"action": "reject"})
    assert header(verdict) == ("label=present; it is addressed outside the council "
                               "(friend@example.org)")
    assert [f.code for f in verdict.findings] == ["labelled-outside"]


async def test_labelled_mail_to_too_many_is_flagged(tmp_path: Path) -> None:
    rcpts = tuple(f"cllr{i}@stanion-pc.gov.uk" for i in range(5))
    msg = message_with(subject=LABEL, body="Agenda for Part II items\n")
    verdict, _ = await check(tmp_path, msg, rcpts=rcpts, settings={"max_recipients": 4})
    assert header(verdict) == ("label=present; it is addressed to 5 people, more than the 4 "
                               "the council allows for confidential mail")


# ----------------------------------------------------------------------- actions

async def test_hold_quarantines_with_a_plain_reason(tmp_path: Path) -> None:
    verdict, _ = await check(tmp_path, message_with(body="personal data\n"),
                             settings={"action": {"outbound": "hold"}})
    assert isinstance(verdict, Quarantine)
    assert verdict.reasons == (f'it contains the phrase "personal data" in the message text, '
                               f'without the "{LABEL}" label',)


async def test_reject_says_what_where_and_what_to_do(tmp_path: Path) -> None:
    msg = message_with(subject="Staff", body="personal data\n",
                       attachments=(("staff.xlsx", make_xlsx([["AB 12 34 56 C"]]), XLSX),))
    verdict, _ = await check(tmp_path, msg, rcpts=("someone@example.org",),
                             settings={"action": "reject"})
    assert isinstance(verdict, Reject)
    assert (verdict.code, verdict.enhanced) == (550, "5.7.1")
    assert verdict.text.startswith(
        'Not sent: the message contains the phrase "personal data" in the message text; a '
        'National Insurance number in the attachment "staff.xlsx" and is addressed outside the '
        f'council but is not marked "{LABEL}".')
    assert verdict.text.endswith("Remove the material, or add the label to the Subject or the "
                                 "top of the message, then send it again.")
    assert len(verdict.text) <= 480  # one SMTP reply line


async def test_a_long_reject_is_shortened_but_keeps_the_advice(tmp_path: Path) -> None:
    names = [f"{'very long file name ' * 3}{i}.txt" for i in range(6)]
    msg = message_with(attachments=tuple((n, b"personal data", "text/plain") for n in names))
    verdict, _ = await check(tmp_path, msg, settings={"action": "reject"})
    assert isinstance(verdict, Reject)
    assert len(verdict.text) <= 480
    assert " ... Council policy:" in verdict.text
    assert verdict.text.endswith("then send it again.")


async def test_actions_differ_by_direction(tmp_path: Path) -> None:
    settings = {"action": {"outbound": "reject", "inbound": "hold"}}
    msg = message_with(body="personal data\n")
    assert isinstance((await check(tmp_path, msg, settings=settings))[0], Reject)
    inbound, _ = await check(tmp_path, msg, direction="inbound", sender="a@example.org",
                             settings=settings)
    assert isinstance(inbound, Quarantine)


async def test_inbound_default_is_flag_and_never_notifies_outsiders(tmp_path: Path) -> None:
    verdict, ctx = await check(tmp_path, message_with(body="personal data\n"),
                               direction="inbound", sender="solicitor@example.org",
                               settings={"notify_sender": True})
    assert header(verdict).startswith("label=absent")
    assert ctx.notices == []


# ----------------------------------------------------------------------- the notice

async def test_notice_to_the_sender_when_flagged(tmp_path: Path) -> None:
    msg = message_with(subject="Staffing", body="personal data\n")
    verdict, ctx = await check(tmp_path, msg, rcpts=(CLERK, "bob@example.org"),
                               settings={"notify_sender": True})
    assert isinstance(verdict, Modify)
    (notice,) = ctx.notices
    assert notice["To"] == CLLR
    assert notice["From"] == "Council mail gateway <postmaster@stanion-pc.gov.uk>"
    assert notice["Subject"] == 'Confidential material in your message "Staffing"'
    body = notice.get_content()
    assert body.startswith("Your message was delivered, marked for the clerk's attention.")
    assert f'"Staffing" to {CLERK}, bob@example.org' in body
    assert '  - the phrase "personal data" in the message text' in body
    assert f'it is not marked "{LABEL}".' in body
    assert "Stanion Parish Council" in " ".join(body.split())
    assert all(len(line) <= 72 for line in body.splitlines())


async def test_notice_when_held_says_it_was_not_sent(tmp_path: Path) -> None:
    _, ctx = await check(tmp_path, message_with(body="personal data\n"),
                         settings={"notify_sender": True, "action": "hold"})
    assert ctx.notices[0].get_content().startswith("Your message has NOT been sent yet")


async def test_no_notice_unless_asked_or_when_rejected(tmp_path: Path) -> None:
    msg = message_with(body="personal data\n")
    assert (await check(tmp_path, msg))[1].notices == []
    assert (await check(tmp_path, msg, settings={"notify_sender": True,
                                                 "action": "reject"}))[1].notices == []


# ----------------------------------------------------------------------- false positives

async def test_someone_elses_confidentiality_footer_does_not_trigger(tmp_path: Path) -> None:
    body = ("Thanks, we'll be there on Tuesday.\n\n"
            "> On Mon, Bob wrote:\n> See you then.\n\n"
            "CONFIDENTIALITY NOTICE: This e-mail and any attachments are confidential and may "
            "contain personal data. They are intended solely for the addressee. If you have "
            "received this email in error, please notify the sender and delete it.\n")
    verdict, _ = await check(tmp_path, message_with(body=body))
    assert verdict == Accept()


async def test_an_identifier_in_a_footer_still_counts(tmp_path: Path) -> None:
    body = ("Hi\n\nDisclaimer: this message is confidential. Payee ref AB 12 34 56 C. "
            "If you are not the intended recipient please delete it.\n")
    value = header((await check(tmp_path, message_with(body=body)))[0])
    assert value == "label=absent; found: a National Insurance number in the message text"


@pytest.mark.parametrize("body", [
    "This item is time-sensitive; please reply by Friday.",
    "We must be sensitive to residents' needs.",
    "The non-confidential part of the report is attached.",
    "Please see Part II of the Localism Act.",
    "The minutes are confidentially stored.",
    "Meeting on 12-03-24, invoice 20240312 attached.",
])
async def test_ordinary_council_mail_is_not_flagged(tmp_path: Path, body: str) -> None:
    assert (await check(tmp_path, message_with(body=body)))[0] == Accept()


# ----------------------------------------------------------------------- unreadable files

async def test_a_file_that_cannot_be_read_is_not_taken_as_clean(tmp_path: Path) -> None:
    msg = message_with(attachments=(
        ("locked.pdf", make_encrypted_pdf("personal data"), "application/pdf"),))
    verdict, _ = await check(tmp_path, msg)
    assert header(verdict) == ('label=absent; not checked: the attachment "locked.pdf" (it is '
                               "password-protected)")
    assert [f.code for f in verdict.findings] == ["unreadable"]


async def test_a_labelled_message_may_carry_an_unreadable_file(tmp_path: Path) -> None:
    msg = message_with(subject=LABEL, attachments=(
        ("locked.pdf", make_encrypted_pdf("x"), "application/pdf"),))
    assert isinstance((await check(tmp_path, msg))[0], Accept)


# ----------------------------------------------------------------------- settings

def test_settings_problems_are_reported_with_their_keys(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        build_config(tmp_path, {"confidential": {
            "action": {"outbound": "shred"},
            "patterns": {"broken": "(unclosed"},
            "detectors": ["passport"],
            "markers": ["ok", "  "],
            "max_recipients": 0,
            "colour": "red",
        }})
    problems = {p.key: p.message for p in err.value.problems}
    assert problems["confidential.action.outbound"].startswith('"shred" is not one of')
    assert "not a regular expression" in problems["confidential.patterns.broken"]
    assert '"passport" is not a detector' in problems["confidential.detectors[0]"]
    assert "has no words" in problems["confidential.markers[1]"]
    assert "too small" in problems["confidential.max_recipients"]
    assert "not a setting" in problems["confidential.colour"]


async def test_configured_markers_and_patterns_replace_the_defaults(tmp_path: Path) -> None:
    settings = {"markers": ["planning enforcement"], "patterns": {"case ref": r"\bPE/\d{4}\b"},
                "detectors": []}
    msg = message_with(body="Personal data about planning\nenforcement case PE/1234, "
                            "NI AB 12 34 56 C\n")
    value = header((await check(tmp_path, msg, settings=settings))[0])
    assert value == ('label=absent; found: the phrase "planning enforcement" in the message '
                     "text; text matching the pattern 'case ref' in the message text")


def test_the_shipped_config_documents_the_defaults() -> None:
    from gateway.config import load_config, section
    from gateway.filters.access_codes import AccessCodesConfig, parse_access_codes
    from gateway.filters.confidential import ConfidentialConfig, parse_confidential
    from gateway.filters.language import LanguageConfig, parse_language

    config = load_config(Path(__file__).parents[2] / "config" / "gateway.toml")
    assert parse_confidential(section(config, "confidential")) == ConfidentialConfig()
    assert parse_access_codes(section(config, "access_codes")) == AccessCodesConfig()
    assert parse_language(section(config, "language")) == LanguageConfig()


def test_check_config_names_the_key_and_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.conftest import write_config

    path = write_config(tmp_path, {"confidential": {"patterns": {"broken": "(unclosed"}}})
    run = subprocess.run([sys.executable, "-m", "gateway", "check-config", "--config", str(path)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1)
                if text.startswith("broken"))
    assert f"confidential.patterns.broken (line {line}): is not a regular expression" in run.stderr
