"""Old spellings of what the ``[policy]`` table now says, still read and explained.

Before the policy table each filter had its own action key with its own words (``reject``,
``quarantine``, ``flag``...). Those keys keep working: :func:`translate` moves each into
``[policy]`` (unless ``[policy]`` already says something for that finding, which then wins) and
leaves a note naming the new spelling, which check-config prints.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from gateway.config.reader import Problem

__all__ = ["OldKey", "OLD_KEYS", "translate"]

Sides = tuple[str, ...]


@dataclass(frozen=True)
class OldKey:
    section: str
    key: str
    finding: str  # the [policy] key it becomes
    sides: Sides  # the sides a plain value applies to
    words: tuple[tuple[str, str], ...]  # old word -> action
    table: bool = False  # may also be {inbound = ..., outbound = ...}


_REFUSE_HOLD = (("reject", "refuse"), ("quarantine", "hold"))
_FLAG_HOLD = (("flag", "tag"), ("hold", "hold"), ("reject", "refuse"))
BOTH: Sides = ("inbound", "outbound")

OLD_KEYS: tuple[OldKey, ...] = (
    OldKey("clamav", "inbound_action", "virus", ("inbound",), _REFUSE_HOLD),
    OldKey("clamav", "too_big", "unscannable", BOTH,
           (("reject", "refuse"), ("tempfail", "tempfail"), ("quarantine", "hold"))),
    OldKey("clamav", "on_error", "scan-failed", BOTH,
           (("tempfail", "tempfail"), ("accept", "deliver"))),
    OldKey("attachments", "inbound_action", "attachment", ("inbound",), _REFUSE_HOLD),
    OldKey("attachments", "outbound_action", "attachment", ("outbound",), _REFUSE_HOLD),
    OldKey("junk", "action", "junk", ("inbound",),
           (("quarantine", "hold"), ("reject", "refuse"), ("tag", "tag"))),
    OldKey("confidential", "action", "confidential", BOTH, _FLAG_HOLD, table=True),
    OldKey("access_codes", "action", "access-code", ("outbound",), _FLAG_HOLD),
    OldKey("language", "action", "language", ("outbound",), _FLAG_HOLD),
)


def _spell(finding: str, sides: dict[str, str]) -> str:
    key = finding if re.fullmatch(r"[A-Za-z0-9_-]+", finding) else f'"{finding}"'
    if set(sides) == set(BOTH) and len(set(sides.values())) == 1:
        return f'{key} = "{next(iter(sides.values()))}"'
    inner = ", ".join(f'{side} = "{act}"' for side, act in sorted(sides.items()))
    return f"{key} = {{ {inner} }}"


def _read(old: OldKey, value: Any, problems: list[Problem]) -> dict[str, str] | None:
    words = dict(old.words)
    where = f"{old.section}.{old.key}"
    allowed = ", ".join(f'"{w}"' for w in words)
    if old.table and isinstance(value, dict):
        out = {}
        for side, word in value.items():
            if side not in BOTH:
                problems.append(Problem(f"{where}.{side}", 'is not a side; use "inbound" or '
                                                          '"outbound"'))
            elif word not in words:
                problems.append(Problem(f"{where}.{side}", f'"{word}" is not one of the '
                                                          f"allowed values: {allowed}"))
            else:
                out[side] = words[word]
        return out
    if not isinstance(value, str) or value not in words:
        problems.append(Problem(where, f'"{value}" is not one of the allowed values: {allowed}'))
        return None
    return dict.fromkeys(old.sides, words[value])


def translate(raw: dict[str, Any]) -> tuple[dict[str, Any], list[Problem], list[Problem]]:
    """(raw with old keys moved into [policy], notes, problems)."""
    raw = copy.deepcopy(raw)
    notes: list[Problem] = []
    problems: list[Problem] = []
    given = raw.get("policy", {})
    if not isinstance(given, dict):
        return raw, notes, problems  # the policy parser reports it
    policy: dict[str, Any] = dict(given)
    for old in OLD_KEYS:
        section = raw.get(old.section)
        if not isinstance(section, dict) or old.key not in section:
            continue
        sides = _read(old, section.pop(old.key), problems)
        if not sides:
            continue
        where = f"{old.section}.{old.key}"
        if old.finding in given:
            notes.append(Problem(where, f"is the old spelling and is ignored: [policy] "
                                        f"{old.finding} already says what to do"))
            continue
        current = policy.get(old.finding)
        merged = dict(current) if isinstance(current, dict) else {}
        merged.update(sides)
        policy[old.finding] = merged
        notes.append(Problem(where, f"is the old spelling (still read); in [policy] write: "
                                    f"{_spell(old.finding, sides)}"))
    if policy:
        raw["policy"] = policy
    return raw, notes, problems
