"""One policy decides: finding codes (or groups of them) and the side map to an action.

Every filter declares the :class:`~gateway.verdicts.Kind` of each finding it can report, with
its default action per side. The ``[policy]`` table of the config overrides those defaults::

    [policy]
    virus = "refuse"
    attachment = { inbound = "hold", outbound = "refuse" }

A key names a code (``attachment.macro``) or a group (``attachment`` covers every code that starts
with ``attachment.``); the most specific key wins, then the kind's own default. For a message, the
strongest action of all its findings wins (deliver < tag < hold < tempfail < refuse).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from gateway.config.reader import Section
from gateway.verdicts import Action, Decision, Finding, Kind, Release, Severity

__all__ = ["Policy", "PolicyConfig", "Side", "groups_of", "parse_policy"]

Side = Literal["inbound", "outbound"]
SIDES: tuple[Side, Side] = ("inbound", "outbound")

# A reply line names a few reasons; the audit log and the quarantine keep them all.
MAX_IN_REPLY = 3


def groups_of(code: str) -> list[str]:
    """``attachment.macro`` -> ["attachment.macro", "attachment"]: most specific first."""
    parts = code.split(".")
    return [".".join(parts[:n]) for n in range(len(parts), 0, -1)]


@dataclass(frozen=True)
class PolicyConfig:
    """The ``[policy]`` table: key -> (inbound action, outbound action); None keeps the default."""

    table: Mapping[str, tuple[Action | None, Action | None]] = field(default_factory=dict)


def _action(s: Section, key: str, raw: object) -> Action | None:
    try:
        return Action(str(raw))
    except ValueError:
        options = ", ".join(f'"{a.value}"' for a in Action)
        s.problem(key, f'"{raw}" is not an action; use one of {options}')
        return None


def parse_policy(s: Section, kinds: Iterable[Kind]) -> PolicyConfig:
    """Read ``[policy]``; every key must name a known finding code or group of codes."""
    by_code = {k.code: k for k in kinds}
    known = set(by_code) | {g for code in by_code for g in groups_of(code)}
    table: dict[str, tuple[Action | None, Action | None]] = {}
    for key, raw in s.raw.items():
        s.seen.add(key)
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f'; did you mean "{close[0]}"?' if close else ""
            s.problem(key, f"is not a kind of finding the gateway reports{hint} "
                           "(council-gateway pipeline lists them)")
            continue
        if isinstance(raw, dict):
            sub = s.sub(key)
            pair = tuple(_action(sub, side, sub.raw[side]) if side in sub.raw else None
                         for side in SIDES)
            for side in SIDES:
                sub.seen.add(side)
            sub.finish()
            inbound, outbound = pair
        else:
            inbound = outbound = _action(s, key, raw)
        passing = sorted({a.value for a in (inbound, outbound)
                          if a in (Action.DELIVER, Action.TAG)})
        never = [c for c, k in by_code.items()
                 if key in groups_of(c) and k.release is Release.NEVER]
        if passing and never:
            s.problem(key, f'cannot be "{passing[0]}": {", ".join(never)} is never passed on; '
                           'use "refuse" or "hold"')
        table[key] = (inbound, outbound)
    return PolicyConfig(table)


class Policy:
    """The finding vocabulary and the configured table, ready to decide (immutable)."""

    def __init__(self, kinds: Iterable[Kind], config: PolicyConfig | None = None):
        self.kinds: dict[str, Kind] = {}
        for k in kinds:
            if k.code in self.kinds and self.kinds[k.code] != k:
                raise ValueError(f"finding code {k.code!r} is declared twice")
            self.kinds[k.code] = k
        self.table = dict(config.table) if config else {}

    def kind(self, code: str) -> Kind | None:
        return self.kinds.get(code)

    def action_for(self, code: str, side: Side) -> Action:
        index = 0 if side == "inbound" else 1
        for key in groups_of(code):
            configured = self.table.get(key)
            if configured is not None and configured[index] is not None:
                return configured[index]  # type: ignore[return-value]
        kind = self.kinds.get(code)
        if kind is None:
            return Action.DELIVER
        return kind.inbound if side == "inbound" else kind.outbound

    def effective(self, finding: Finding, side: Side,
                  approved: frozenset[str] = frozenset()) -> Action:
        """The action one finding calls for; a hold the clerk approved becomes a delivery."""
        act = self.action_for(finding.code, side)
        if act is Action.HOLD and finding.code in approved:
            return Action.DELIVER
        return act

    def release_of(self, codes: Iterable[str]) -> Release:
        """The strictest release rule of these codes."""
        order = [Release.YES, Release.FORCE, Release.NEVER]
        worst = Release.YES
        for code in codes:
            kind = self.kinds.get(code)
            if kind is not None and order.index(kind.release) > order.index(worst):
                worst = kind.release
        return worst

    def decide(self, findings: Iterable[Finding], side: Side,
               approved: frozenset[str] = frozenset()) -> Decision:
        """The strongest action of all findings, with the findings that call for it and the
        ones of the same checks that support them."""
        findings = tuple(findings)
        acts = [self.effective(f, side, approved) for f in findings]
        action = max(acts, key=lambda a: a.strength, default=Action.DELIVER)
        calling = [f for f, a in zip(findings, acts, strict=True) if a is action]
        if action is Action.DELIVER:
            return Decision(Action.DELIVER, ())
        # The evidence beside them: what the same checks noticed (junk's signals, say).
        filters = {f.filter for f in calling}
        because = tuple(f for f in findings if f in calling or (
            f.filter in filters and f.severity > Severity.INFO))
        if action not in (Action.REFUSE, Action.TEMPFAIL):
            return Decision(action, because)
        first = calling[0]
        kind = self.kinds.get(first.code) or Kind(first.code, "")
        smtp = kind.refuse if action is Action.REFUSE else kind.tempfail
        same = [f for f in calling if f.filter == first.filter]
        text = first.sender_text
        if not first.reply and len(same) > 1:
            text = "; ".join(f.text for f in same[:MAX_IN_REPLY])
            if len(same) > MAX_IN_REPLY:
                text += f" (and {len(same) - MAX_IN_REPLY} more)"
        default = kind.inbound if side == "inbound" else kind.outbound
        if action is Action.TEMPFAIL and default is not Action.TEMPFAIL:
            # A finding that would be refused, deferred by the council's choice instead.
            text = f"Message not accepted for now: {first.text}; try again later"
        elif action is Action.REFUSE and default is Action.TEMPFAIL:
            text = f"Message rejected: {first.text}"
        return Decision(action, because, smtp, text)
