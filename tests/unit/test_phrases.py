"""Phrase matching: whole words, any case, any white space between words."""

from __future__ import annotations

import pytest

from gateway.rules.phrases import PhraseError, PhraseSet, phrase_regex, word_set

MARKERS = PhraseSet(["confidential", "private and confidential", "personal data", "sensitive",
                     "wank*"])


@pytest.mark.parametrize("text, found", [
    ("This is confidential.", ["confidential"]),
    ("CONFIDENTIAL", ["confidential"]),
    ("Confidential:", ["confidential"]),
    ("personal\ndata", ["personal data"]),
    ("personal \t\n  data", ["personal data"]),
    ("Personal Data", ["personal data"]),
    ("personal\u00a0data", ["personal data"]),  # no-break space from HTML &nbsp;
    # the longer phrase is reported, the shorter one inside it is not reported again
    ("Private and Confidential", ["private and confidential"]),
    ("Private and confidential; also confidential", ["private and confidential", "confidential"]),
    # whole words only
    ("confidentiality", []),
    ("insensitive remarks", []),
    ("personaldata", []),
    ("personal datasets", []),
    # a hyphen-joined word in front makes a different word
    ("non-confidential", []),
    ("time-sensitive", []),
    ("confidential-minutes", ["confidential"]),
    ("- confidential -", ["confidential"]),
    # the wildcard allows endings, never a longer word in front
    ("wankers", ["wank*"]),
    ("swank", []),
    ("", []),
])
def test_phrases_are_found_as_whole_words_in_any_case(text: str, found: list[str]) -> None:
    assert MARKERS.search(text) == found


def test_a_given_word_set_may_be_wider_than_the_text() -> None:
    text = "nothing here"
    assert MARKERS.search(text, word_set("personal data and nothing here")) == []


@pytest.mark.parametrize("bad", ["", "   ", "*"])
def test_a_phrase_without_words_is_refused(bad: str) -> None:
    with pytest.raises(PhraseError):
        phrase_regex(bad)


def test_many_occurrences_stay_quick_to_decide() -> None:
    # A phrase found tens of thousands of times inside a longer one must not be compared pair by
    # pair (that would take minutes); this finishes at once when the cover test is logarithmic.
    text = "private and confidential " * 40_000
    assert MARKERS.search(text) == ["private and confidential"]
