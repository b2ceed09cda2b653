"""The "Restricted Distribution Private and Confidential" label (Stanion, "Security")."""

from __future__ import annotations

import pytest

from gateway.rules.label import Label

LABEL = Label("Restricted Distribution Private and Confidential")


@pytest.mark.parametrize("subject, body, present", [
    ("Restricted Distribution Private and Confidential: staffing", "", True),
    ("[RESTRICTED DISTRIBUTION PRIVATE AND CONFIDENTIAL] staffing", "", True),
    ("restricted   distribution  private and confidential", "", True),
    ("Restricted Distribution - Private and Confidential", "", True),
    ("Staffing", "Restricted Distribution Private and Confidential\n\nDear all,", True),
    ("Staffing", "\n\n  Restricted Distribution\n  Private and Confidential\n\nDear all", True),
    ("Staffing", "Dear all,\nRESTRICTED DISTRIBUTION PRIVATE AND CONFIDENTIAL\n", True),
    # too far down to count as marking the message
    ("Staffing", "Dear all,\n\nline two\nline three\nRestricted Distribution Private and "
                 "Confidential", False),
    ("Staffing", "Private and Confidential", False),
    ("Restricted distribution", "", False),
    ("Unrestricted Distribution Private and Confidential", "", False),
])
def test_label_in_subject_or_top_of_body(subject: str, body: str, present: bool) -> None:
    assert LABEL.present(subject, [body]) is present


def test_the_label_is_taken_out_only_at_the_top() -> None:
    body = ("Restricted Distribution Private and Confidential\nDear all,\nsee below\n"
            "Restricted Distribution Private and Confidential\n")
    cleaned = LABEL.remove_top(body)
    assert cleaned.count("Restricted Distribution") == 1
    assert cleaned.endswith("Restricted Distribution Private and Confidential\n")
