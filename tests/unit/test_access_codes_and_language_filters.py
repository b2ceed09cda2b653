"""The access_codes (Stanion "Disclosure Rules") and language (Kirkham rule 12) filters."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from gateway.assembly import BY_NAME, default_chain
from gateway.config import ConfigError
from gateway.verdicts import Action
from tests.conftest import build_config
from tests.documents import DOCX, as_bytes, make_docx, make_encrypted_pdf, message_with
from tests.policykit import Checked, build, check, context, new_spelling, notes_of, policy_of

CLLR = "cllr.smith@stanion-pc.gov.uk"


async def run(tmp_path: Path, which: str, msg: EmailMessage,
              settings: dict[str, Any] | None = None,
              policy: dict[str, Any] | None = None) -> Checked:
    """``which`` filter on an outgoing message, decided with the config's [policy] table."""
    overrides: dict[str, Any] = {which: settings or {}}
    if policy:
        overrides["policy"] = policy
    config = build_config(tmp_path, overrides)
    ctx = context(as_bytes(msg), mail_from=CLLR, rcpts=("bob@example.org",))
    return await check(build(config, which), ctx, policy_of(config))


def test_listed_for_outbound_after_confidential() -> None:
    assert BY_NAME["confidential"].sides == ("inbound", "outbound")
    assert BY_NAME["access_codes"].sides == ("outbound",)
    assert BY_NAME["language"].sides == ("outbound",)
    chain = default_chain("outbound")
    assert chain.index("confidential") < chain.index("access_codes") < chain.index("language")
    assert "access_codes" not in default_chain("inbound")


async def test_access_code_is_tagged_without_its_value(tmp_path: Path) -> None:
    msg = message_with(body="Hi, the hall wifi password is Bluebell2024!\n")
    checked = await run(tmp_path, "access_codes", msg)
    assert checked.codes == ["access-code"]
    assert checked.action is Action.TAG
    assert checked.tag_field == ("X-Council-Access-Codes", "found: a password in the message text")
    assert "Bluebell2024" not in repr(checked.report)


async def test_access_code_in_a_document_is_refused_when_so_configured(tmp_path: Path) -> None:
    msg = message_with(attachments=(("handover.docx",
                                     make_docx("The key safe code is 1397"), DOCX),))
    decision = (await run(tmp_path, "access_codes", msg,
                          policy={"access-code": "refuse"})).decision
    assert decision.action is Action.REFUSE
    assert decision.smtp is not None
    assert (decision.smtp.code, decision.smtp.enhanced) == (550, "5.7.1")
    assert decision.text.startswith("Not sent: the message appears to contain a door, alarm or "
                                    'key safe code in the attachment "handover.docx".')
    assert "Disclosure Rules" in decision.text and "1397" not in decision.text


async def test_the_old_action_key_still_refuses_and_names_its_new_spelling(
        tmp_path: Path) -> None:
    config = build_config(tmp_path, {"access_codes": {"action": "reject"}})
    assert list(notes_of(config)) == ["access_codes.action"]
    spelling = new_spelling(config, "access_codes.action")
    assert spelling == {"access-code": {"outbound": "refuse"}}
    msg = message_with(attachments=(("handover.docx",
                                     make_docx("The key safe code is 1397"), DOCX),))
    old = await run(tmp_path, "access_codes", msg, {"action": "reject"})
    new = await run(tmp_path, "access_codes", msg, policy=spelling)
    assert old.action is Action.REFUSE and old.decision == new.decision


async def test_access_code_notice_and_hold(tmp_path: Path) -> None:
    msg = message_with(subject="Laptop", body="PIN 4821\n")
    config = build_config(tmp_path, {"access_codes": {"notify_sender": True},
                                     "policy": {"access-code": "hold"}})
    checked = await check(build(config, "access_codes"),
                          context(as_bytes(msg), mail_from=CLLR, rcpts=("bob@example.org",)),
                          policy_of(config))
    assert checked.action is Action.HOLD
    assert checked.decision.reasons == ("a PIN in the message text",)
    (notice,) = checked.notices(config)
    assert notice["To"] == CLLR
    assert notice["Subject"] == 'A password or code in your message "Laptop"'
    body = notice.get_content()
    assert "NOT been sent yet" in body and "  - a PIN in the message text" in body
    assert "4821" not in body


async def test_talk_about_passwords_passes(tmp_path: Path) -> None:
    msg = message_with(body="Please reset your password before Monday's meeting.\n")
    checked = await run(tmp_path, "access_codes", msg)
    assert checked.report.findings == () and checked.report.tag is None
    assert checked.action is Action.DELIVER


async def test_unreadable_files_are_recorded_not_taken_as_clean(tmp_path: Path) -> None:
    msg = message_with(attachments=(("x.pdf", make_encrypted_pdf("PIN 1234"),
                                     "application/pdf"),))
    checked = await run(tmp_path, "access_codes", msg)
    assert [(f.code, f.text) for f in checked.report.findings] == [
        ("unreadable", 'the attachment "x.pdf" could not be checked: it is password-protected')]
    assert checked.action is Action.DELIVER  # recorded only


async def test_language_is_tagged_with_the_word_and_place(tmp_path: Path) -> None:
    msg = message_with(subject="Re: the bins", body="Tell that idiot to empty them.\n")
    checked = await run(tmp_path, "language", msg)
    assert checked.codes == ["language"] and checked.action is Action.TAG
    assert checked.tag_field == ("X-Council-Language", 'found: "idiot" in the message text')


async def test_language_refuse_and_scunthorpe(tmp_path: Path) -> None:
    msg = message_with(subject="Scunthorpe and Penistone", html="<p>You <b>bas</b>tard</p>")
    decision = (await run(tmp_path, "language", msg, policy={"language": "refuse"})).decision
    assert decision.action is Action.REFUSE
    assert decision.smtp is not None
    assert (decision.smtp.code, decision.smtp.enhanced) == (550, "5.7.1")
    assert decision.text.startswith(
        'Not sent: the message contains "bastard" in the message text (HTML). ')
    assert "Kirkham Town Council rule 12" in decision.text
    clean = message_with(subject="Scunthorpe and Penistone", body="Cockermouth, Clitheroe\n")
    checked = await run(tmp_path, "language", clean, policy={"language": "refuse"})
    assert checked.report.findings == () and checked.action is Action.DELIVER


async def test_the_old_language_action_key_still_holds(tmp_path: Path) -> None:
    config = build_config(tmp_path, {"language": {"action": "hold"}})
    assert list(notes_of(config)) == ["language.action"]
    spelling = new_spelling(config, "language.action")
    assert spelling == {"language": {"outbound": "hold"}}
    msg = message_with(subject="Re: the bins", body="Tell that idiot to empty them.\n")
    old = await run(tmp_path, "language", msg, {"action": "hold"})
    new = await run(tmp_path, "language", msg, policy=spelling)
    assert old.action is Action.HOLD and old.decision == new.decision
    assert old.decision.reasons == ('"idiot" in the message text',)


async def test_language_word_list_settings(tmp_path: Path) -> None:
    words = tmp_path / "words.txt"
    words.write_text("numpty\n", encoding="utf-8")
    settings = {"words_file": str(words), "extra_words": ["plonker"], "allowed_words": []}
    msg = message_with(body="What a numpty, what a plonker, what an idiot.\n")
    checked = await run(tmp_path, "language", msg, settings)
    assert checked.action is Action.TAG
    assert checked.tag_field[1] == 'found: "plonker" in the message text; "numpty" in the '\
                                   "message text"


@pytest.mark.parametrize("which, settings, key, words", [
    ("language", {"words_file": "/nonexistent/words.txt"}, "language.words_file",
     "cannot be read"),
    ("language", {"action": "shout"}, "language.action", "is not one of"),
    ("access_codes", {"patterns": {"x": "[unclosed"}}, "access_codes.patterns.x",
     "not a regular expression"),
    ("access_codes", {"notify": True}, "access_codes.notify", "did you mean"),
    ("policy", {"language": "shout"}, "policy.language", '"shout" is not an action'),
    ("policy", {"access-codes": "hold"}, "policy.access-codes", 'did you mean "access-code"?'),
])
def test_settings_problems(tmp_path: Path, which: str, settings: dict[str, Any], key: str,
                           words: str) -> None:
    with pytest.raises(ConfigError) as err:
        build_config(tmp_path, {which: settings})
    problems = {p.key: p.message for p in err.value.problems}
    assert words in problems[key]
