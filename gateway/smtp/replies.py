"""From what was done to the line the SMTP client reads: the only place replies are worded.

Every line has an RFC 3463 enhanced status code and a sentence a person understands, in ASCII,
within the 512 octets RFC 5321 allows.
"""

from __future__ import annotations

from gateway.delivery.dispatch import Carried
from gateway.rules.wording import MAX_REPLY_TEXT, ascii_safe
from gateway.verdicts import Action, Decision

__all__ = ["INTERNAL_ERROR", "line", "refusal", "too_big"]

INTERNAL_ERROR = "451 4.3.0 The gateway had an internal problem; please try again later"


def too_big(limit: int) -> str:
    return f"552 5.3.4 The message is too big; this gateway accepts up to {limit / 1048576:.0f} MiB"


def _fit(text: str) -> str:
    text = ascii_safe(text)
    return text if len(text) <= MAX_REPLY_TEXT else text[: MAX_REPLY_TEXT - 4].rstrip() + " ..."


def refusal(decision: Decision) -> str:
    assert decision.smtp is not None
    return f"{decision.smtp.code} {decision.smtp.enhanced} {_fit(decision.text)}"


def line(carried: Carried, decision: Decision, side: str) -> str:
    """The reply for a message the pipeline decided on and the gateway then dealt with."""
    if carried.action in (Action.REFUSE, Action.TEMPFAIL):
        return refusal(decision)
    if carried.action is Action.HOLD:
        if not carried.held:
            return "451 4.3.0 The message could not be stored safely; please try again later"
        if side == "outbound":
            return ("250 2.0.0 " + _fit("Held for the clerk to review before it is sent: "
                                        + "; ".join(decision.reasons)))
        return "250 2.0.0 Message accepted"
    assert carried.delivery is not None
    return carried.delivery.reply
