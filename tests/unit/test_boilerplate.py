"""Other people's confidentiality notices are not confidential content by themselves."""

from __future__ import annotations

from gateway.rules.boilerplate import MAX_PARAGRAPH, Boilerplate

STRIP = Boilerplate().strip

FOOTER = ("CONFIDENTIALITY NOTICE: This email and any attachments are confidential and intended "
          "solely for the use of the individual to whom they are addressed. If you have received "
          "this email in error please notify the sender.")


def test_a_footer_paragraph_is_left_out() -> None:
    text = f"Thanks for the agenda.\n\nRegards,\nBob\n\n{FOOTER}\n"
    assert STRIP(text) == "Thanks for the agenda.\n\nRegards,\nBob"


def test_a_heading_takes_the_paragraph_after_it_along() -> None:
    text = ("Hello\n\nConfidentiality notice:\n\nThis message is confidential and may be "
            "privileged.\n\nP.S. the confidential papers follow.")
    assert STRIP(text) == "Hello\n\nP.S. the confidential papers follow."


def test_own_writing_stays() -> None:
    text = "The attached report is confidential.\n\nPlease do not forward it."
    assert STRIP(text) == text


def test_a_long_paragraph_with_a_cue_is_someones_own_writing() -> None:
    long = ("The intended recipient of the grant is the village hall. " * 40)[:MAX_PARAGRAPH + 10]
    assert STRIP(long + "\n\nconfidential") == long + "\n\nconfidential"
