"""Access codes written into a message (Stanion, "Disclosure Rules"): found with their value,
and talk about passwords left alone."""

from __future__ import annotations

import pytest

from gateway.rules.access_codes import AccessCodeRules

RULES = AccessCodeRules()


@pytest.mark.parametrize("text, found", [
    ("Password: Summer2024!", ["a password"]),
    ("the wifi password is Tr0ub4dor", ["a password"]),
    ("Your new password for the portal is 'bluebell'", ["a password"]),
    ("pwd=hunter22", ["a password"]),
    ("login: jsmith password: rabbit", ["a password"]),
    ("Wi-Fi key: ABCD1234EF", ["a password"]),
    ("PIN 4821", ["a PIN"]),
    ("PIN number: 0000", ["a PIN"]),
    ("The key safe code is 1397", ["a door, alarm or key safe code"]),
    ("door code 4512", ["a door, alarm or key safe code"]),
    ("The code for the front door is 1234", ["a door, alarm or key safe code"]),
    ("The alarm code is 12 34", ["a door, alarm or key safe code"]),
    ("username/password: jsmith/Bluebell7", ["a user name and password"]),
    ("Username and password are jsmith and Bluebell7", ["a user name and password"]),
])
def test_codes_with_their_values_are_found(text: str, found: list[str]) -> None:
    assert RULES.find(text) == found


@pytest.mark.parametrize("text", [
    "Please reset your password.",
    "The password policy is attached.",
    "Forgotten your PIN?",
    "password: see below",
    "Password: sent separately",
    "the password is changing next week",
    "Our new password manager is great",
    "The password is required for login",
    "Please use a strong password: at least 12 characters",
    "Password reset link is https://example.org/reset",
    "pin the notice to the board",
    "The access code of conduct",
    "Code of Conduct 2024",
    "the combination of factors",
])
def test_talk_about_passwords_is_not_a_finding(text: str) -> None:
    assert RULES.find(text) == []


def test_configured_patterns_are_named_in_findings() -> None:
    rules = AccessCodeRules([("alarm card", r"card\s+\d{6}")])
    assert rules.find("use card 123456") == ["text matching the pattern 'alarm card'"]
