"""Dangerous attachments, each rule with a real file (Stanion "Email": attachments are opened only
from trusted sources, "if in any doubt - do not open"; Kirkham rule 14)."""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.context import MessageContext, parse_message
from gateway.filters.attachments import AttachmentsConfig, AttachmentsFilter, report
from gateway.policy import Side
from gateway.rules.attachments import (
    AttachmentRules,
    check_name,
    content_family,
    extension_of,
    inspect_file,
    inspect_message,
)
from gateway.rules.wording import display_name
from gateway.verdicts import Action, Release, Severity
from tests import samples
from tests.conftest import build_config
from tests.policykit import POLICY, build, check, context, new_spelling, notes_of, policy_of

RULES = AttachmentRules()
Make = Callable[[], bytes]  # makes a file's content

NAMES = [
    # (file name, rule broken or None)
    ("minutes.pdf", None),
    ("report.2024.final.docx", None),
    ("photos.tar.gz", None),
    ("README", None),
    ("setup.exe", "blocked-type"),
    ("SETUP.EXE", "blocked-type"),
    ("run.exe. ", "blocked-type"),  # Windows drops the trailing dot and space
    ("update.js", "blocked-type"),
    ("tool.ps1", "blocked-type"),
    ("shortcut.lnk", "blocked-type"),
    ("disk.iso", "blocked-type"),
    ("app.jar", "blocked-type"),
    ("installer.msi", "blocked-type"),
    ("script.vbs", "blocked-type"),
    ("screen.scr", "blocked-type"),
    ("budget.xlsm", "macro"),
    ("letter.docm", "macro"),
    ("slides.pptm", "macro"),
    ("invoice.pdf.exe", "double-extension"),
    ("invoice.pdf      .exe", "double-extension"),
    ("scan.JPG.js", "double-extension"),
    ("letter.doc.docm", "double-extension"),
    ("invoice\u202efdp.exe", "disguised-name"),  # shows as "invoiceexe.pdf"
]


@pytest.mark.parametrize(("name", "rule"), NAMES)
def test_name_rules(name: str, rule: str | None) -> None:
    danger = check_name(name, RULES)
    assert (danger.rule if danger else None) == rule
    if danger:
        assert display_name(name) in danger.text  # the file name is in the reason


def test_name_rules_follow_the_configured_lists() -> None:
    rules = AttachmentRules(blocked_extensions=frozenset({"pdf"}), macro_extensions=frozenset(),
                            double_extensions=False)
    assert check_name("minutes.pdf", rules) is not None
    assert check_name("setup.exe", rules) is None
    assert check_name("budget.xlsm", rules) is None
    assert check_name("invoice\u202efdp.exe", rules) is None


@pytest.mark.parametrize(("name", "ext"), [("a.PDF", "pdf"), ("a", ""), (".bashrc", ""),
                                           ("dir/x.tar.gz", "gz"), ("x.exe.", "exe")])
def test_extension_of(name: str, ext: str) -> None:
    assert extension_of(name) == ext


def test_hidden_characters_are_shown_not_obeyed() -> None:
    assert display_name("invoice\u202efdp.exe") == "invoice<U+202E>fdp.exe"


# --------------------------------------------------------------------------- content

def test_real_files_are_recognised_by_content() -> None:
    assert content_family(samples.clam_exe()) == "program"
    assert content_family(samples.pdf()) == "pdf"
    assert content_family(samples.docx()) == "office-zip"
    assert content_family(samples.xlsx()) == "office-zip"
    assert content_family(samples.png()) == "image"
    assert content_family(samples.zip_of({"a.txt": b"x"})) == "zip"
    assert content_family(b"just some words") is None


MATCHING = [
    ("minutes.pdf", "application/pdf", samples.pdf),
    ("minutes.docx", "application/octet-stream", samples.docx),
    ("budget.xlsx", "application/vnd.ms-excel", samples.xlsx),  # mislabelled but harmless
    ("map.png", "image/png", samples.png),
    ("map.jpg", "image/jpeg", samples.png),  # a picture is a picture
    ("notes.txt", "text/plain", lambda: b"plain words"),
    ("papers.zip", "application/zip", lambda: samples.zip_of({"minutes.pdf": samples.pdf()})),
]


@pytest.mark.parametrize(("name", "ctype", "make"), MATCHING)
def test_files_that_are_what_they_say_pass(name: str, ctype: str, make: Make) -> None:
    assert inspect_file(name, make(), RULES, from_outside=True, content_type=ctype) == []


MISMATCHED = [
    ("invoice.pdf", "application/pdf", samples.clam_exe, "really a program"),
    ("notes.txt", "text/plain", samples.clam_exe, "really a program"),
    ("", "application/octet-stream", samples.clam_exe, "really a program"),
    ("photo.jpg", "image/jpeg", samples.pdf, "named .jpg but its content is a PDF document"),
    ("minutes.pdf", "application/pdf", lambda: samples.zip_of({"a.txt": b"x"}),
     "named .pdf but its content is a ZIP archive"),
    ("minutes.docx", "application/msword", samples.pdf, "is a PDF document"),
    ("scan", "application/pdf", samples.png, "declared as application/pdf but its content is "
                                             "a picture"),
]


@pytest.mark.parametrize(("name", "ctype", "make", "words"), MISMATCHED)
def test_declared_type_contradicted_by_content(name: str, ctype: str, make: Make,
                                               words: str) -> None:
    dangers = inspect_file(name, make(), RULES, from_outside=False, content_type=ctype)
    assert [d.rule for d in dangers] == ["type-mismatch"]
    assert words in dangers[0].text
    if name:
        assert name in dangers[0].text


def test_macros_hidden_in_a_docx_are_found() -> None:
    dangers = inspect_file("minutes.docx", samples.with_macros(samples.docx()), RULES,
                           from_outside=True)
    assert [d.rule for d in dangers] == ["macro"]
    assert "minutes.docx" in dangers[0].text


def test_content_checks_can_be_turned_off() -> None:
    rules = AttachmentRules(check_content=False)
    assert inspect_file("invoice.pdf", samples.clam_exe(), rules, from_outside=True) == []


# --------------------------------------------------------------------------- archives

def test_program_inside_a_zip_is_named_with_its_archive() -> None:
    data = samples.zip_of({"docs/minutes.pdf": samples.pdf(), "docs/setup.exe": samples.clam_exe()})
    dangers = inspect_file("papers.zip", data, RULES, from_outside=True)
    assert [(d.rule, d.name) for d in dangers] == [
        ("blocked-type", "docs/setup.exe (inside papers.zip)")]


def test_disguised_program_inside_a_zip_inside_a_zip() -> None:
    inner = samples.zip_of({"scan.pdf": samples.clam_exe()})
    dangers = inspect_file("outer.zip", samples.zip_of({"inner.zip": inner}), RULES,
                           from_outside=True)
    assert [(d.rule, d.name) for d in dangers] == [("type-mismatch", "scan.pdf (inside outer.zip)")]


def test_archives_are_not_opened_when_looking_inside_is_off() -> None:
    data = samples.zip_of({"setup.exe": samples.clam_exe()})
    assert inspect_file("a.zip", data, AttachmentRules(look_inside_archives=False),
                        from_outside=True) == []


def test_encrypted_archive_from_outside_is_dangerous(tmp_path: Path) -> None:
    data = samples.encrypted_zip(tmp_path, {"minutes.pdf": samples.pdf()})
    dangers = inspect_file("minutes.zip", data, RULES, from_outside=True)
    assert [d.rule for d in dangers] == ["encrypted-archive"]
    assert "minutes.zip is a password-protected archive" in dangers[0].text


def test_encrypted_archive_sent_by_the_council_may_go(tmp_path: Path) -> None:
    data = samples.encrypted_zip(tmp_path, {"minutes.pdf": samples.pdf()})
    assert inspect_file("minutes.zip", data, RULES, from_outside=False) == []
    rules = AttachmentRules(block_encrypted_archives=False)
    assert inspect_file("minutes.zip", data, rules, from_outside=True) == []


def test_encrypted_archive_still_shows_its_file_names(tmp_path: Path) -> None:
    data = samples.encrypted_zip(tmp_path, {"setup.exe": samples.clam_exe()})
    rules = [d.rule for d in inspect_file("a.zip", data, RULES, from_outside=False)]
    assert rules == ["blocked-type"]


@pytest.mark.parametrize(("rules", "make", "words"), [
    (AttachmentRules(max_depth=2), lambda: samples.nested_zip(4), "nested more than 2 deep"),
    (AttachmentRules(max_archive_entries=5),
     lambda: samples.zip_of({f"f{i}.txt": b"x" for i in range(6)}), "more than 5 files"),
    (AttachmentRules(max_archive_size=1000),
     lambda: samples.zip_of({"a.bin": os.urandom(2000)}), "an archive too large"),
    (AttachmentRules(max_archive_size=1000),  # a small ZIP that unpacks to a lot (a "bomb")
     lambda: samples.zip_of({"a.bin": bytes(range(256)) * 20}), "unpacks to more data"),
])
def test_archives_beyond_the_limits_are_dangerous(rules: AttachmentRules, make: Make,
                                                  words: str) -> None:
    dangers = inspect_file("big.zip", make(), rules, from_outside=True)
    assert [d.rule for d in dangers] == ["archive-limits"]
    assert words in dangers[0].text and "big.zip" in dangers[0].text


def test_damaged_zip_cannot_be_checked() -> None:
    data = samples.zip_of({"a.txt": b"hello" * 100})[:-30]
    dangers = inspect_file("a.zip", data, RULES, from_outside=True)
    assert [d.rule for d in dangers] == ["damaged-archive"]


def test_nested_limits_hold_within_the_defaults() -> None:
    assert inspect_file("ok.zip", samples.nested_zip(3), RULES, from_outside=True) == []


# --------------------------------------------------------------------------- messages

def test_zip_in_a_forwarded_message_is_looked_into() -> None:
    inner = samples.message(("invoice.zip", "application/zip",
                             samples.zip_of({"invoice.pdf.exe": samples.clam_exe()})))
    dangers = inspect_message(parse_message(samples.forwarded(inner)), RULES, from_outside=True)
    assert [(d.rule, d.name) for d in dangers] == [
        ("double-extension", "invoice.pdf.exe (inside invoice.zip)")]


def test_attached_eml_file_is_looked_into() -> None:
    inner = samples.message(("run.bat", "application/octet-stream", b"@echo off\r\n"))
    msg = samples.message(("old mail.eml", "application/octet-stream", inner))
    dangers = inspect_message(parse_message(msg), RULES, from_outside=True)
    assert [(d.rule, d.name) for d in dangers] == [("blocked-type", "run.bat")]


def test_plain_message_and_ordinary_attachments_are_fine() -> None:
    msg = samples.message(("minutes.pdf", "application/pdf", samples.pdf()),
                          ("budget.xlsx", "application/vnd.openxmlformats-officedocument."
                                          "spreadsheetml.sheet", samples.xlsx()),
                          ("map.png", "image/png", samples.png()))
    assert inspect_message(parse_message(msg), RULES, from_outside=True) == []


# --------------------------------------------------------------------------- decisions

PROGRAM = samples.message(("setup.exe", "application/octet-stream", samples.clam_exe()))
MACRO = samples.message(("budget.xlsm", "application/octet-stream", samples.xlsx()))
SETUP_EXE = "the attachment setup.exe is a .exe file, a program or script type that is blocked"


def _ctx(side: Side, data: bytes) -> MessageContext:
    return context(data, side=side, mail_from="a@example.org", rcpts=("clerk@stanion-pc.gov.uk",))


async def test_outbound_program_is_refused_naming_the_file() -> None:
    checked = await check(AttachmentsFilter(AttachmentsConfig()), _ctx("outbound", PROGRAM))
    assert checked.action is Action.REFUSE
    assert checked.decision.smtp is not None
    assert (checked.decision.smtp.code, checked.decision.smtp.enhanced) == (554, "5.7.1")
    assert checked.decision.text == f"Message rejected: {SETUP_EXE}"
    (finding,) = checked.report.findings
    assert (finding.filter, finding.code, finding.severity, finding.text) == (
        "attachments", "attachment.blocked-type", Severity.HIGH, SETUP_EXE)


async def test_inbound_program_is_held_for_the_it_volunteer_only() -> None:
    checked = await check(AttachmentsFilter(AttachmentsConfig()), _ctx("inbound", PROGRAM))
    assert checked.action is Action.HOLD
    assert checked.decision.reasons == (SETUP_EXE,)
    assert POLICY.release_of(checked.codes) is Release.FORCE  # the clerk cannot release it


async def test_actions_per_side_are_configurable(tmp_path: Path) -> None:
    flt = AttachmentsFilter(AttachmentsConfig())
    config = build_config(tmp_path, {"policy": {"attachment": {"inbound": "refuse",
                                                               "outbound": "hold"}}})
    policy = policy_of(config)
    assert (await check(flt, _ctx("inbound", MACRO), policy)).action is Action.REFUSE
    assert (await check(flt, _ctx("outbound", MACRO), policy)).action is Action.HOLD


async def test_one_kind_of_danger_can_be_treated_apart_from_the_group(tmp_path: Path) -> None:
    config = build_config(tmp_path, {"policy": {"attachment": "hold",
                                                "attachment.macro": "refuse"}})
    flt = AttachmentsFilter(AttachmentsConfig())
    assert (await check(flt, _ctx("inbound", MACRO), policy_of(config))).action is Action.REFUSE
    assert (await check(flt, _ctx("outbound", PROGRAM), policy_of(config))).action \
        is Action.HOLD


async def test_the_old_action_keys_still_load_and_name_their_new_spelling(tmp_path: Path) -> None:
    old = build_config(tmp_path, {"attachments": {"inbound_action": "reject",
                                                  "outbound_action": "quarantine"}})
    assert list(notes_of(old)) == ["attachments.inbound_action", "attachments.outbound_action"]
    assert new_spelling(old, "attachments.inbound_action") == {
        "attachment": {"inbound": "refuse"}}
    assert new_spelling(old, "attachments.outbound_action") == {
        "attachment": {"outbound": "hold"}}
    new = build_config(tmp_path, {"policy": {"attachment": {"inbound": "refuse",
                                                            "outbound": "hold"}}})
    assert new.notes == ()
    flt = build(old, "attachments")
    sides: tuple[tuple[Side, Action], ...] = (("inbound", Action.REFUSE),
                                              ("outbound", Action.HOLD))
    for side, action in sides:
        was = await check(flt, _ctx(side, MACRO), policy_of(old))
        now = await check(flt, _ctx(side, MACRO), policy_of(new))
        assert was.action is action and was.decision == now.decision


async def test_clean_message_is_delivered_with_nothing_found() -> None:
    msg = samples.message(("minutes.pdf", "application/pdf", samples.pdf()))
    checked = await check(AttachmentsFilter(AttachmentsConfig()), _ctx("outbound", msg))
    assert checked.report.findings == () and checked.report.change is None
    assert checked.action is Action.DELIVER


def test_reply_names_a_few_files_and_counts_the_rest() -> None:
    dangers = inspect_file("a.zip", samples.zip_of({f"f{i}.exe": b"x" for i in range(5)}),
                           RULES, from_outside=True)
    found = report(dangers)
    decision = POLICY.decide(found.findings, "outbound")
    assert decision.action is Action.REFUSE
    assert decision.text.endswith("(and 2 more)") and len(found.findings) == 5
    assert all(f"f{i}.exe" in decision.text for i in range(3)) and "f3.exe" not in decision.text
    assert len(decision.because) == 5  # the audit log and the quarantine keep them all


def test_an_attached_message_too_complex_to_parse_is_not_parsed() -> None:
    # The measure saw only its base64; the parser would have spent seconds on its header.
    inner = (b"From: a@example.org\r\nSubject: x\r\nContent-Disposition: " + b"(x)" * 4000
             + b"\r\n\r\nbody\r\n")
    [danger] = inspect_file("forwarded.eml", inner, RULES, from_outside=True,
                            content_type="message/rfc822")
    assert danger.rule == "archive-limits"
    assert danger.text == ("the attached message forwarded.eml cannot be checked: its fields "
                           "read as addresses or parameters (From, To, Content-Type ...) are "
                           "too intricate to check safely")
    ordinary = b"From: a@example.org\r\nSubject: x\r\n\r\nbody\r\n"
    assert inspect_file("forwarded.eml", ordinary, RULES, from_outside=True) == []


def test_attached_messages_together_are_no_more_complex_than_one() -> None:
    one = (b"From: a@example.org\r\nSubject: x\r\nContent-Disposition: attachment; "
           + b"a=b; " * 800 + b"\r\n\r\nbody\r\n")  # under every limit on its own
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        for i in range(30):
            zf.writestr(f"note{i}.eml", one)
    dangers = inspect_file("notes.zip", archive.getvalue(), RULES, from_outside=True)
    [danger] = dangers  # said once, not once for each of the 24 after the sixth
    assert danger.rule == "archive-limits"
    assert danger.text.startswith("the attached messages, note6.eml (inside notes.zip) and "
                                  "those after it, cannot be checked together: ")
