"""Offensive language from the built-in word list (Kirkham rule 12; Stanion "Unacceptable
Use"), and the Scunthorpe problem avoided."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.rules.language import LanguageRules, default_words, parse_word_list, read_word_list

RULES = LanguageRules(default_words())


@pytest.mark.parametrize("text", [
    "Scunthorpe United won again",
    "Penistone, Cockermouth, Clitheroe, Bitchfield, Shitterton, Twatt and Middlesex",
    "the assessment of the class",
    "Dickens and Cocker were at the meeting",
    "the raccoon in the flame retardant shed",
    "the Pakistani community association",
    "a chink in the armour; a dyke along the field; faggots and peas",
    "the bloody nose from the cricket ball",
    "the drawing pin; the analysis; the therapist",
])
def test_no_scunthorpe_problem(text: str) -> None:
    assert RULES.find(text) == []


@pytest.mark.parametrize("text, found", [
    ("you absolute wanker", ["wanker"]),
    ("FUCKING hell", ["fuck*"]),
    ("He is an idiot.", ["idiot"]),
    ("I know where\nyou live", ["i know where you live"]),
    ("I'll kill you", ["i'll kill you"]),
    ("what a load of bollocks", ["bollocks"]),
])
def test_offensive_words_are_found(text: str, found: list[str]) -> None:
    assert RULES.find(text) == found


def test_a_council_can_add_and_allow_words(tmp_path: Path) -> None:
    path = tmp_path / "words.txt"
    path.write_text("# ours\nnumpty\nplonker  # mild\n\n", encoding="utf-8")
    words = read_word_list(path)
    assert words == ["numpty", "plonker"]
    rules = LanguageRules(words + ["idiot"], allowed=["Plonker"])
    assert rules.find("numpty plonker idiot") == ["numpty", "idiot"]


def test_the_default_list_is_well_formed() -> None:
    words = default_words()
    assert len(words) > 80
    assert all(w == " ".join(w.split()) for w in words)
    assert parse_word_list("a # b\n#c\n  d  e \n") == ["a", "d e"]
