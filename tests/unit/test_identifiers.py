"""National Insurance numbers and bank details (made-up numbers throughout); Part II business."""

from __future__ import annotations

import pytest

from gateway.rules.exempt_business import count_part_ii
from gateway.rules.identifiers import count_bank_details, count_ni_numbers


@pytest.mark.parametrize("text, count", [
    ("NI number: AB 12 34 56 C", 1),
    ("ab123456c", 1),
    ("JT 98 76 54 D.", 1),
    ("AB 12 34 56 C and CE 65 43 21 A", 2),
    ("QQ 12 34 56 C", 0),  # HMRC's own example: Q is never used
    ("GB 12 34 56 A", 0),  # prefix never issued
    ("DA 12 34 56 A", 0),  # D is never a first letter
    ("AO 12 34 56 A", 0),  # O is never a second letter
    ("AB 12 34 56 E", 0),  # suffix goes A to D
    ("AB1234567C", 0),
    ("XAB123456C", 0),
    ("order ref AB123456", 0),
])
def test_ni_numbers(text: str, count: int) -> None:
    assert count_ni_numbers(text) == count


@pytest.mark.parametrize("text, count", [
    ("Sort code 12-34-56 account 12345678", 1),
    ("Account number: 87654321, sort code: 20 00 00", 1),
    ("a/c 12345678 s/c 112233", 1),
    ("Bank details:\nSort code: 40-11-62\nAccount: 71234567", 1),
    ("Meeting on 12-03-24, invoice 20240312", 0),  # a date and a number, no bank words
    ("Bank: 12-34-56 / 123456789", 0),  # nine digits is not an account number
    ("sort code 12-34-56", 0),  # a sort code alone identifies a branch, not a person
    ("account 12345678", 0),
    ("Sort code 12-34-56" + " " * 100 + "account 12345678", 0),  # too far apart
])
def test_bank_details(text: str, count: int) -> None:
    assert count_bank_details(text) == count


@pytest.mark.parametrize("text, count", [
    ("Part II items", 1),
    ("PART 2 - EXEMPT BUSINESS", 1),
    ("to be taken in Part II.", 1),
    ("under part two", 1),
    ("Part II: confidential", 1),
    ("Part II of the Localism Act 2011", 0),
    ("see part 2 of the report", 0),
    ("part 2 below", 0),
    ("counterpart 2 items", 0),
])
def test_part_ii_business(text: str, count: int) -> None:
    assert count_part_ii(text) == count
