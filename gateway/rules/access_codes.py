"""Computer and network access codes written into a message (Stanion, "Disclosure Rules").

Looks for a secret *with its value*: "password: Summer2024!", "the wifi password is
Tr0ub4dor", "PIN 4821", "the key safe code is 1397", "username/password: jsmith/Bluebell7".
Talking *about* passwords is not a finding: "reset your password", "the password policy is
attached", "forgotten your PIN?". What counts as a value:

* after a colon or an equals sign: any word of four characters or more that is not an ordinary
  word such as "see", "attached", "sent" or "below";
* after "is"/"was": a word with a digit or a symbol in it, or with capitals inside it, or in
  quotes ("the password is changing" is not a password);
* for PINs and door, alarm or key safe codes: three to eight digits.

Findings name the kind of secret and never its value.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass

from gateway.rules.phrases import word_set

__all__ = ["AccessCodeRules", "KINDS"]

_SEP = r"\s*(?:[:=]|\bis\b\s*:?|\bwas\b\s*:?|\bwill\s+be\b\s*:?|[-\u2013]\s)\s*"
_QUOTES = "\"'\u201c\u201d\u2018\u2019`"
_VALUE = r"(?P<value>[^\s]{3,64})"



@dataclass(frozen=True)
class _Pattern:
    lower: re.Pattern[str]  # for the lower-cased text: four times faster than ignoring case
    any_case: re.Pattern[str]  # for the rare text whose length lower-casing changes


def _both(pattern: str) -> _Pattern:
    return _Pattern(re.compile(pattern), re.compile(pattern, re.IGNORECASE))


# The patterns are written in lower case. They do not start with a look-behind (that makes
# ``re`` slow on long texts); whether a match starts a word is checked afterwards (_starts_word).
_PASSWORD = _both(
    r"(?P<key>pass\s?words?|pass\s?codes?|pass\s?phrases?|pwd|p/w|wi-?fi\s+(?:key|code)"
    r"|wpa2?\s+key|network\s+key|wireless\s+key|security\s+key)"
    r"(?P<between>(?:\s+[\w.@-]+){0,4}?)"
    + r"(?P<sep>" + _SEP + r")" + _VALUE,
)
_PIN = _both(
    r"p(?<!\wp)(?P<key>in)(?:\s*(?:number|no\.?|code))?(?:\s+(?:for|to|of|on)\s+[\w\s]{1,30}?)?"
    r"\s*(?:[:=]|\bis\b|\bwas\b|-)?\s*(?P<value>\d{3,8})(?!\d)",
)
_CODE = _both(
    r"(?P<key>(?:door|alarm|entry|gate|access|key\s?safe|lock\s?box|padlock|safe|building|"
    r"security|burglar\s+alarm)\s+(?:code|combination|number)|combination)"
    r"(?:\s+(?:for|to|of|on)\s+[\w\s]{1,30}?)?"
    r"\s*(?:[:=]|\bis\b|\bwas\b|-)?\s*(?P<value>\d[\d ]{1,10}\d)(?!\d)",
)
_CODE_FOR = _both(
    r"(?:code|combination|pin)\s+(?:for|to|of|on)\s+the\s+(?:front\s+|back\s+|side\s+)?"
    r"(?:door|alarm|key\s?safe|lock\s?box|padlock|safe|gate|building|office|hall|pavilion)"
    r"\s*(?:[:=]|\bis\b|\bwas\b|-)?\s*(?P<value>\d[\d ]{1,10}\d)(?!\d)",
)
_PAIR = _both(
    r"(?:user\s?names?|log\s?-?ins?|user\s?ids?|logon)\s*(?:/|and|&|\+)\s*"
    r"(?:pass\s?words?|pwd|pins?)\b\s*(?:[:=]|\bis\b|\bare\b|-)?\s*"
    r"(?P<value>[^\s/]{2,64}\s*/\s*[^\s/]{3,64}|[^\s]{2,64}\s+(?:and|&)\s+[^\s]{3,64})",
)

# Words that follow "password:" in mail about passwords rather than mail with one.
_NOT_SECRETS = frozenset("""
    see below above attached enclosed sent separately follows following provided required
    needed changed expired expires reset please will shall should must is was are to be the
    your our their my his her its a an and or not none n/a na tbc tba same unchanged hidden
    protected policy policies manager strength strong weak secure secret blank empty removed
    via by in on at for from with this that these those it it's ask call phone text sms
    email e-mail link here there known forgotten lost
""".split())

KINDS = ("password", "pin", "door_code", "user_password")


def _starts_word(m: re.Match[str]) -> bool:
    start, text = m.start(), m.string
    return start == 0 or not (text[start - 1].isalnum() or text[start - 1] == "_")


class _Scan:
    """One text, searched lower-cased; values are read from the text as written."""

    def __init__(self, text: str):
        self.text = text
        low = text.lower()
        self.fast = len(low) == len(text)  # spans of one are spans of the other
        self.src = low if self.fast else text

    def any(self, pattern: _Pattern,
            test: Callable[[str, re.Match[str]], bool] | None = None) -> bool:
        regex = pattern.lower if self.fast else pattern.any_case
        for m in regex.finditer(self.src):
            if _starts_word(m) and (test is None or test(self.text, m)):
                return True
        return False


def _strip_quotes(value: str) -> tuple[str, bool]:
    quoted = value[:1] in _QUOTES
    return value.strip(_QUOTES + ".,;:!?)(][<>"), quoted


def _looks_secret(value: str, quoted: bool) -> bool:
    """A word that is not ordinary prose: has a digit or symbol, capitals inside, or quotes."""
    if quoted:
        return len(value) >= 3
    if re.search(r"\d|[^\w]", value):
        return not value.startswith(("http://", "https://", "www."))
    return any(c.isupper() for c in value[1:])


def _password_value(text: str, m: re.Match[str]) -> bool:
    value, quoted = _strip_quotes(text[m.start("value"):m.end("value")])
    if len(value) < 4 and not quoted:
        return False
    if value.lower() in _NOT_SECRETS or value.startswith(("http://", "https://", "www.")):
        return False
    colon = any(c in m.group("sep") for c in ":=")
    return colon or _looks_secret(value, quoted)


@dataclass(frozen=True)
class _Named:
    name: str
    regex: re.Pattern[str]


# Words one of which is in every text these rules can find something in.
_TRIGGERS = frozenset({
    "password", "passwords", "passcode", "passcodes", "passphrase", "pass", "pwd", "p", "wifi",
    "wi", "wpa", "wpa2", "network", "wireless", "security", "pin", "code", "combination",
    "username", "usernames", "user", "login", "logins", "log", "logon", "number",
})


class AccessCodeRules:
    """The built-in finders plus any named regular expressions from the configuration."""

    def __init__(self, patterns: Iterable[tuple[str, str]] = ()):
        self.patterns = tuple(_Named(name, re.compile(rx)) for name, rx in patterns)

    def find(self, text: str, words: Collection[str] | None = None) -> list[str]:
        """What kinds of secret ``text`` holds, described for a person; each kind once."""
        found: list[str] = []
        if words is None:
            words = word_set(text)
        if not _TRIGGERS.isdisjoint(words):
            scan = _Scan(text)
            if scan.any(_PAIR):
                found.append("a user name and password")
            if not found and scan.any(_PASSWORD, _password_value):
                found.append("a password")
            if scan.any(_PIN):
                found.append("a PIN")
            if scan.any(_CODE) or scan.any(_CODE_FOR):
                found.append("a door, alarm or key safe code")
        for p in self.patterns:
            if p.regex.search(text):
                found.append(f"text matching the pattern {p.name!r}")
        return found
