"""The confidential filter (Stanion "Security" and "Email"; Kirkham rule 13) on real messages."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from gateway.config import Config, ConfigError
from gateway.filters.confidential import HEADER
from gateway.policy import Side
from gateway.verdicts import Action
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
from tests.policykit import Checked, build, context, new_spelling, notes_of, policy_of
from tests.policykit import check as run_check

LABEL = "Restricted Distribution Private and Confidential"
CLLR = "cllr.smith@stanion-pc.gov.uk"
CLERK = "clerk@stanion-pc.gov.uk"


async def checked_with(tmp_path: Path, msg: EmailMessage, *, rcpts: tuple[str, ...] = (CLERK,),
                       side: Side = "outbound", sender: str = CLLR,
                       settings: dict[str, Any] | None = None,
                       policy: dict[str, Any] | None = None) -> tuple[Checked, Config]:
    """The filter's report on ``msg`` and the decision of the config's [policy] table."""
    overrides: dict[str, Any] = {"confidential": settings or {}}
    if policy:
        overrides["policy"] = policy
    config = build_config(tmp_path, overrides)
    ctx = context(as_bytes(msg), side=side, mail_from=sender, rcpts=rcpts)
    return await run_check(build(config, "confidential"), ctx, policy_of(config)), config


async def check(tmp_path: Path, msg: EmailMessage, **kw: Any) -> Checked:
    return (await checked_with(tmp_path, msg, **kw))[0]


def header(checked: Checked) -> str:
    """The X-Council-Confidential value of a message the policy tags."""
    assert checked.action is Action.TAG, checked.decision
    name, value = checked.tag_field
    assert name == HEADER
    return value


# ----------------------------------------------------------------------- marker kinds

@pytest.mark.parametrize("body, what", [
    ("The attached is personal data.", 'the phrase "personal data"'),
    ("Item 7 will be taken as Part II business.", 'a mention of "Part II" (private) business'),
    ("Her NI number is AB 12 34 56 C.", "a National Insurance number"),
    ("Pay to sort code 12-34-56, account 12345678.", "a bank sort code and account number"),
])
async def test_each_marker_kind_in_the_body_is_tagged(tmp_path: Path, body: str,
                                                      what: str) -> None:
    checked = await check(tmp_path, message_with(body=body))
    assert header(checked) == f"label=absent; found: {what} in the message text"
    assert checked.codes == ["confidential.marker"]
    assert LABEL in checked.report.findings[0].text


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
    checked = await check(tmp_path, msg)
    assert f'the phrase "not for publication" in {where}' in header(checked)


async def test_identifiers_inside_office_files(tmp_path: Path) -> None:
    msg = message_with(attachments=(
        ("staff.xlsx", make_xlsx([["Name", "NI"], ["Jo Bloggs", "JT 98 76 54 D"]]), XLSX),
        ("pay.docx", make_docx("Bank details", table=[["Sort code", "40-11-62"],
                                                      ["Account", "71234567"]]), DOCX),
    ))
    value = header(await check(tmp_path, msg))
    assert 'a National Insurance number in the attachment "staff.xlsx"' in value
    assert 'a bank sort code and account number in the attachment "pay.docx"' in value


# ----------------------------------------------------------------------- the label

async def test_labelled_message_with_markers_to_council_passes(tmp_path: Path) -> None:
    msg = message_with(subject=f"{LABEL}: staffing", body="personal data of the clerk\n")
    checked, config = await checked_with(tmp_path, msg, settings={"notify_sender": True})
    assert checked.action is Action.DELIVER
    assert checked.codes == ["label-present"]  # recorded in the audit log
    assert checked.report.tag is None and checked.notices(config) == []


async def test_labelled_message_without_markers_passes_untouched(tmp_path: Path) -> None:
    msg = message_with(body=f"{LABEL}\n\nDear all, the meeting moves to Thursday.\n")
    checked = await check(tmp_path, msg, settings={"notify_sender": True})
    assert checked.action is Action.DELIVER
    assert checked.report.findings == () and checked.report.notices == ()
    assert checked.report.tag is None and checked.report.change is None


async def test_label_at_the_top_of_the_body_counts(tmp_path: Path) -> None:
    msg = message_with(html=f"<p><b>{LABEL.upper()}</b></p><p>personal data</p>",
                       body=f"{LABEL.upper()}\n\npersonal data\n")
    checked = await check(tmp_path, msg)
    assert checked.action is Action.DELIVER and checked.codes == ["label-present"]


async def test_label_lower_down_does_not_count(tmp_path: Path) -> None:
    msg = message_with(body=f"Dear all,\n\nPlease read.\nThanks\n\n{LABEL}\n")
    value = header(await check(tmp_path, msg))
    assert value == ('label=absent; found: the phrase "private and confidential" in the message '
                     "text")


async def test_labelled_mail_outside_the_council_is_tagged_even_when_refusing(
        tmp_path: Path) -> None:
    # The sender did what the policy asks by labelling it: [policy] confidential does not
    # cover labelled mail.
    msg = message_with(subject=f"{LABEL} - staffing", body="personal data\n")
    checked = await check(tmp_path, msg, rcpts=(CLERK, "friend@example.org"),
                          policy={"confidential": "refuse"})
    assert header(checked) == ("label=present; it is addressed outside the council "
                               "(friend@example.org)")
    assert checked.codes == ["labelled.outside"]


async def test_labelled_mail_to_too_many_is_tagged(tmp_path: Path) -> None:
    rcpts = tuple(f"cllr{i}@stanion-pc.gov.uk" for i in range(5))
    msg = message_with(subject=LABEL, body="Agenda for Part II items\n")
    checked = await check(tmp_path, msg, rcpts=rcpts, settings={"max_recipients": 4})
    assert header(checked) == ("label=present; it is addressed to 5 people, more than the 4 "
                               "the council allows for confidential mail")
    assert checked.codes == ["labelled.many-recipients"]


# ----------------------------------------------------------------------- actions

async def test_hold_quarantines_with_a_plain_reason(tmp_path: Path) -> None:
    checked = await check(tmp_path, message_with(body="personal data\n"),
                          policy={"confidential": {"outbound": "hold"}})
    assert checked.action is Action.HOLD
    assert checked.decision.reasons == (
        f'the phrase "personal data" in the message text, without the label "{LABEL}"',)


REFUSED_STAFF = message_with(subject="Staff", body="personal data\n",
                             attachments=(("staff.xlsx", make_xlsx([["AB 12 34 56 C"]]), XLSX),))


async def test_refusal_says_what_where_and_what_to_do(tmp_path: Path) -> None:
    checked = await check(tmp_path, REFUSED_STAFF, rcpts=("someone@example.org",),
                          policy={"confidential": "refuse"})
    decision = checked.decision
    assert decision.action is Action.REFUSE and decision.smtp is not None
    assert (decision.smtp.code, decision.smtp.enhanced) == (550, "5.7.1")
    assert decision.text.startswith(
        'Not sent: the message contains the phrase "personal data" in the message text; a '
        'National Insurance number in the attachment "staff.xlsx" and is addressed outside the '
        f'council but is not marked "{LABEL}".')
    assert decision.text.endswith("Remove the material, or add the label to the Subject or the "
                                  "top of the message, then send it again.")
    assert len(decision.text) <= 480  # one SMTP reply line
    assert checked.codes == ["confidential.marker", "confidential.marker",
                             "confidential.outside"]


async def test_the_old_action_key_still_refuses_and_names_its_new_spelling(
        tmp_path: Path) -> None:
    old, config = await checked_with(tmp_path, REFUSED_STAFF, rcpts=("someone@example.org",),
                                     settings={"action": "reject"})
    assert list(notes_of(config)) == ["confidential.action"]
    spelling = new_spelling(config, "confidential.action")
    assert spelling == {"confidential": "refuse"}
    new = await check(tmp_path, REFUSED_STAFF, rcpts=("someone@example.org",), policy=spelling)
    assert old.action is Action.REFUSE and old.decision == new.decision


async def test_a_long_refusal_is_shortened_but_keeps_the_advice(tmp_path: Path) -> None:
    names = [f"{'very long file name ' * 3}{i}.txt" for i in range(6)]
    msg = message_with(attachments=tuple((n, b"personal data", "text/plain") for n in names))
    decision = (await check(tmp_path, msg, policy={"confidential": "refuse"})).decision
    assert decision.action is Action.REFUSE
    assert len(decision.text) <= 480
    assert " ... Council policy:" in decision.text
    assert decision.text.endswith("then send it again.")


@pytest.mark.parametrize("spelling", [
    {"policy": {"confidential": {"outbound": "refuse", "inbound": "hold"}}},
    {"settings": {"action": {"outbound": "reject", "inbound": "hold"}}},  # the old key
], ids=["policy", "old key"])
async def test_actions_differ_by_side(tmp_path: Path, spelling: dict[str, Any]) -> None:
    msg = message_with(body="personal data\n")
    outbound = await check(tmp_path, msg, **spelling)
    assert outbound.action is Action.REFUSE
    inbound = await check(tmp_path, msg, side="inbound", sender="a@example.org", **spelling)
    assert inbound.action is Action.HOLD


def test_the_old_table_key_names_the_new_table(tmp_path: Path) -> None:
    config = build_config(tmp_path, {"confidential": {"action": {"outbound": "reject",
                                                                 "inbound": "hold"}}})
    assert new_spelling(config, "confidential.action") == {
        "confidential": {"inbound": "hold", "outbound": "refuse"}}


async def test_inbound_default_is_tag_and_never_notifies_outsiders(tmp_path: Path) -> None:
    checked, config = await checked_with(tmp_path, message_with(body="personal data\n"),
                                         side="inbound", sender="solicitor@example.org",
                                         settings={"notify_sender": True})
    assert header(checked).startswith("label=absent")
    assert len(checked.report.notices) == 1  # the filter offers one ...
    assert checked.notices(config) == []  # ... but it never goes outside the council


# ----------------------------------------------------------------------- the notice

async def test_notice_to_the_sender_when_tagged(tmp_path: Path) -> None:
    msg = message_with(subject="Staffing", body="personal data\n")
    checked, config = await checked_with(tmp_path, msg, rcpts=(CLERK, "bob@example.org"),
                                         settings={"notify_sender": True})
    assert checked.action is Action.TAG
    (notice,) = checked.notices(config)
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
    checked, config = await checked_with(tmp_path, message_with(body="personal data\n"),
                                         settings={"notify_sender": True},
                                         policy={"confidential": "hold"})
    assert checked.action is Action.HOLD
    (notice,) = checked.notices(config)
    assert notice.get_content().startswith("Your message has NOT been sent yet")


async def test_no_notice_unless_asked_or_when_refused(tmp_path: Path) -> None:
    msg = message_with(body="personal data\n")
    unasked = await check(tmp_path, msg)
    assert unasked.action is Action.TAG and unasked.report.notices == ()
    refused, config = await checked_with(tmp_path, msg, settings={"notify_sender": True},
                                         policy={"confidential": "refuse"})
    assert refused.action is Action.REFUSE and refused.notices(config) == []


# ----------------------------------------------------------------------- false positives

async def test_someone_elses_confidentiality_footer_does_not_trigger(tmp_path: Path) -> None:
    body = ("Thanks, we'll be there on Tuesday.\n\n"
            "> On Mon, Bob wrote:\n> See you then.\n\n"
            "CONFIDENTIALITY NOTICE: This e-mail and any attachments are confidential and may "
            "contain personal data. They are intended solely for the addressee. If you have "
            "received this email in error, please notify the sender and delete it.\n")
    checked = await check(tmp_path, message_with(body=body))
    assert checked.report.findings == () and checked.action is Action.DELIVER


async def test_an_identifier_in_a_footer_still_counts(tmp_path: Path) -> None:
    body = ("Hi\n\nDisclaimer: this message is confidential. Payee ref AB 12 34 56 C. "
            "If you are not the intended recipient please delete it.\n")
    value = header(await check(tmp_path, message_with(body=body)))
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
    checked = await check(tmp_path, message_with(body=body))
    assert checked.report.findings == () and checked.action is Action.DELIVER


# ----------------------------------------------------------------------- unreadable files

async def test_a_file_that_cannot_be_read_is_not_taken_as_clean(tmp_path: Path) -> None:
    msg = message_with(attachments=(
        ("locked.pdf", make_encrypted_pdf("personal data"), "application/pdf"),))
    checked = await check(tmp_path, msg)
    assert header(checked) == ('label=absent; not checked: the attachment "locked.pdf" (it is '
                               "password-protected)")
    assert checked.codes == ["confidential.unreadable"]


async def test_a_labelled_message_may_carry_an_unreadable_file(tmp_path: Path) -> None:
    msg = message_with(subject=LABEL, attachments=(
        ("locked.pdf", make_encrypted_pdf("x"), "application/pdf"),))
    checked = await check(tmp_path, msg)
    assert checked.action is Action.DELIVER and checked.report.tag is None


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
        }, "policy": {"labelled": {"outbound": "shred"}}})
    problems = {p.key: p.message for p in err.value.problems}
    assert problems["confidential.action.outbound"].startswith('"shred" is not one of')
    assert "not a regular expression" in problems["confidential.patterns.broken"]
    assert '"passport" is not a detector' in problems["confidential.detectors[0]"]
    assert "has no words" in problems["confidential.markers[1]"]
    assert "too small" in problems["confidential.max_recipients"]
    assert "not a setting" in problems["confidential.colour"]
    assert problems["policy.labelled.outbound"].startswith('"shred" is not an action')


async def test_configured_markers_and_patterns_replace_the_defaults(tmp_path: Path) -> None:
    settings = {"markers": ["planning enforcement"], "patterns": {"case ref": r"\bPE/\d{4}\b"},
                "detectors": []}
    msg = message_with(body="Personal data about planning\nenforcement case PE/1234, "
                            "NI AB 12 34 56 C\n")
    value = header(await check(tmp_path, msg, settings=settings))
    assert value == ('label=absent; found: the phrase "planning enforcement" in the message '
                     "text; text matching the pattern 'case ref' in the message text")


def test_the_shipped_config_documents_the_defaults() -> None:
    from gateway.assembly import load_config
    from gateway.filters.access_codes import AccessCodesConfig
    from gateway.filters.confidential import ConfidentialConfig
    from gateway.filters.language import LanguageConfig

    config = load_config(Path(__file__).parents[2] / "config" / "gateway.toml")
    assert config.section(ConfidentialConfig) == ConfidentialConfig()
    assert config.section(AccessCodesConfig) == AccessCodesConfig()
    assert config.section(LanguageConfig) == LanguageConfig()
    assert config.notes == ()  # written in today's spelling


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
