"""The access_codes (Stanion "Disclosure Rules") and language (Kirkham rule 12) filters."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from gateway.config import ConfigError
from gateway.context import Envelope, MessageContext
from gateway.filters import REGISTRY, default_chain
from gateway.filters.access_codes import build as build_access_codes
from gateway.filters.language import build as build_language
from gateway.verdicts import Accept, Modify, Quarantine, Reject, Verdict
from tests.conftest import build_config
from tests.documents import DOCX, as_bytes, make_docx, make_encrypted_pdf, message_with

CLLR = "cllr.smith@stanion-pc.gov.uk"


async def run(tmp_path: Path, which: str, msg: EmailMessage,
              settings: dict[str, Any] | None = None) -> tuple[Verdict, MessageContext]:
    config = build_config(tmp_path, {which: settings or {}})
    ctx = MessageContext("t1", "outbound", Envelope(CLLR, ["bob@example.org"]), as_bytes(msg))
    flt = (build_access_codes if which == "access_codes" else build_language)(config)
    return await flt.check(ctx), ctx


def test_registered_for_outbound_after_confidential() -> None:
    assert REGISTRY["confidential"].sides == ("inbound", "outbound")
    assert REGISTRY["access_codes"].sides == ("outbound",)
    assert REGISTRY["language"].sides == ("outbound",)
    chain = default_chain("outbound")
    assert chain.index("confidential") < chain.index("access_codes") < chain.index("language")
    assert "access_codes" not in default_chain("inbound")


async def test_access_code_is_flagged_without_its_value(tmp_path: Path) -> None:
    msg = message_with(body="Hi, the hall wifi password is Bluebell2024!\n")
    verdict, _ = await run(tmp_path, "access_codes", msg)
    assert isinstance(verdict, Modify)
    assert verdict.add_headers == (("X-Council-Access-Codes",
                                    "found: a password in the message text"),)
    assert "Bluebell2024" not in repr(verdict)


async def test_access_code_in_a_document_is_rejected_when_so_configured(tmp_path: Path) -> None:
    msg = message_with(attachments=(("handover.docx",
                                     make_docx("The key safe code is 1397"), DOCX),))
    verdict, _ = await run(tmp_path, "access_codes", msg, {"action": "reject"})
    assert isinstance(verdict, Reject)
    assert (verdict.code, verdict.enhanced) == (550, "5.7.1")
    assert verdict.text.startswith("Not sent: the message appears to contain a door, alarm or "
                                   'key safe code in the attachment "handover.docx".')
    assert "Disclosure Rules" in verdict.text and "1397" not in verdict.text


async def test_access_code_notice_and_hold(tmp_path: Path) -> None:
    msg = message_with(subject="Laptop", body="PIN 4821\n")
    verdict, ctx = await run(tmp_path, "access_codes", msg,
                             {"action": "hold", "notify_sender": True})
    assert isinstance(verdict, Quarantine)
    assert verdict.reasons == ("it appears to contain a PIN in the message text",)
    (notice,) = ctx.notices
    assert notice["Subject"] == 'A password or code in your message "Laptop"'
    body = notice.get_content()
    assert "NOT been sent yet" in body and "  - a PIN in the message text" in body
    assert "4821" not in body


async def test_talk_about_passwords_passes(tmp_path: Path) -> None:
    msg = message_with(body="Please reset your password before Monday's meeting.\n")
    assert (await run(tmp_path, "access_codes", msg))[0] == Accept()


async def test_unreadable_files_are_recorded_not_taken_as_clean(tmp_path: Path) -> None:
    msg = message_with(attachments=(("x.pdf", make_encrypted_pdf("PIN 1234"),
                                     "application/pdf"),))
    verdict, _ = await run(tmp_path, "access_codes", msg)
    assert isinstance(verdict, Accept)
    assert [(f.code, f.text) for f in verdict.findings] == [
        ("unreadable", 'the attachment "x.pdf" could not be checked: it is password-protected')]


async def test_language_is_flagged_with_the_word_and_place(tmp_path: Path) -> None:
    msg = message_with(subject="Re: the bins", body="Tell that idiot to empty them.\n")
    verdict, _ = await run(tmp_path, "language", msg)
    assert isinstance(verdict, Modify)
    assert verdict.add_headers == (("X-Council-Language",
                                    'found: "idiot" in the message text'),)


async def test_language_reject_and_scunthorpe(tmp_path: Path) -> None:
    msg = message_with(subject="Scunthorpe and Penistone", html="<p>You <b>bas</b>tard</p>")
    verdict, _ = await run(tmp_path, "language", msg, {"action": "reject"})
    assert isinstance(verdict, Reject)
    assert verdict.text.startswith(
        'Not sent: the message contains "bastard" in the message text (HTML). ')
    assert "Kirkham Town Council rule 12" in verdict.text
    clean = message_with(subject="Scunthorpe and Penistone", body="Cockermouth, Clitheroe\n")
    assert (await run(tmp_path, "language", clean, {"action": "reject"}))[0] == Accept()


async def test_language_word_list_settings(tmp_path: Path) -> None:
    words = tmp_path / "words.txt"
    words.write_text("numpty\n", encoding="utf-8")
    settings = {"words_file": str(words), "extra_words": ["plonker"], "allowed_words": []}
    msg = message_with(body="What a numpty, what a plonker, what an idiot.\n")
    verdict, _ = await run(tmp_path, "language", msg, settings)
    assert isinstance(verdict, Modify)
    assert verdict.add_headers[0][1] == 'found: "plonker" in the message text; "numpty" in the '\
                                        "message text"


@pytest.mark.parametrize("which, settings, key, words", [
    ("language", {"words_file": "/nonexistent/words.txt"}, "language.words_file",
     "cannot be read"),
    ("language", {"action": "shout"}, "language.action", "is not one of"),
    ("access_codes", {"patterns": {"x": "[unclosed"}}, "access_codes.patterns.x",
     "not a regular expression"),
    ("access_codes", {"notify": True}, "access_codes.notify", "did you mean"),
])
def test_settings_problems(tmp_path: Path, which: str, settings: dict[str, Any], key: str,
                           words: str) -> None:
    with pytest.raises(ConfigError) as err:
        build_config(tmp_path, {which: settings})
    problems = {p.key: p.message for p in err.value.problems}
    assert words in problems[key]
