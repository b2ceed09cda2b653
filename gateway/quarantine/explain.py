"""What the clerk is told about one held message: how serious it is, what to do, and why.

The clerk's page, the command line and the digest all word held mail through :func:`explain`, so
the same message reads the same everywhere: a label (danger, suspicious, probably advertising),
a recommended step, the reasons in plain English, and whether it can be released at all.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.policy import Policy, Side
from gateway.quarantine.store import HeldMessage
from gateway.rules.wording import one_line
from gateway.verdicts import Action, Finding, Release, Severity

__all__ = ["Explanation", "LABELS", "explain"]

# (label, what it means) by the most serious finding that held the message.
LABELS = {
    Severity.HIGH: ("danger", "Danger"),
    Severity.MEDIUM: ("suspicious", "Suspicious"),
    Severity.LOW: ("advertising", "Probably advertising"),
    Severity.INFO: ("held", "Held"),
}
_OUTBOUND_LABEL = ("check", "Waiting for your check")
PHISHING = ("Do not reply, open attachments or click links. Delete it; if it claims to come from "
            "someone you know, check with them by telephone first.")


@dataclass(frozen=True)
class Explanation:
    css: str  # "danger", "suspicious", "advertising", "check" or "held"
    label: str  # "Danger", "Suspicious", ...
    severity: Severity
    advice: str  # the recommended step
    reasons: tuple[str, ...]  # why it was held, in plain English
    noticed: tuple[str, ...]  # everything else the checks noticed (not informational)
    release: Release
    why_not: str  # why it cannot be released by the clerk ("" when it can)


def _sentence(text: str) -> str:
    text = one_line(text, 400)
    return text[:1].upper() + text[1:] if text else "(no reason recorded)"


def explain(policy: Policy, held: HeldMessage) -> Explanation:
    side: Side = "outbound" if held.direction == "outbound" else "inbound"
    holding: list[Finding] = [f for f in held.findings
                              if policy.action_for(f.code, side) in (Action.HOLD,
                                                                      Action.REFUSE)]
    severity = max((f.severity for f in holding), default=Severity.INFO)
    if not holding and held.findings:
        severity = max(f.severity for f in held.findings)
    css, label = LABELS[severity]
    if side == "outbound" and severity < Severity.HIGH:
        css, label = _OUTBOUND_LABEL
    advice = ""
    for f in sorted(holding, key=lambda f: -f.severity):
        kind = policy.kind(f.code)
        if kind is not None and kind.advice:
            advice = kind.advice
            break
    if side == "inbound" and severity is Severity.HIGH and any(f.code == "junk" for f in holding):
        advice = PHISHING
    release = policy.release_of(held.codes)
    why_not = ""
    if release is Release.NEVER:
        why_not = "It contains a virus, so it can never be released. Delete it."
        advice = advice or why_not
    elif release is Release.FORCE:
        why_not = ("It may be dangerous, so only the IT volunteer can release it. If the sender "
                   "is expected and known, ask the IT volunteer; otherwise delete it.")
    shown = set(id(f) for f in holding)
    reasons = tuple(_sentence(r) for r in held.reasons) or tuple(
        _sentence(f.text) for f in holding)
    noticed = tuple(dict.fromkeys(
        s for f in held.findings
        if id(f) not in shown and f.severity > Severity.INFO
        and (s := _sentence(f.text)) not in reasons))
    return Explanation(css, label, severity, advice or "Release it if you expected it; "
                       "otherwise delete it.", reasons, noticed, release, why_not)
