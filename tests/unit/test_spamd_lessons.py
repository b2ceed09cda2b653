"""Which decisions of the clerk teach SpamAssassin what: only mail held as junk alone."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from gateway.assembly import KINDS
from gateway.policy import Policy, PolicyConfig
from gateway.quarantine.lessons import lesson_of
from gateway.quarantine.store import HeldMessage
from gateway.verdicts import Action, Finding, Severity

JUNK = Finding("junk", "junk", Severity.MEDIUM, "Looks like junk.")
SPAMD = Finding("junk", "spamassassin", Severity.MEDIUM, "SpamAssassin scores it 10 points.")
ADVERT = Finding("junk", "advertising", Severity.LOW, "Reads like advertising.")
BLOCKED = Finding("junk", "blocked-sender", Severity.HIGH, "A sender the clerk has blocked.")
VIRUS = Finding("antivirus", "virus", Severity.HIGH, "Eicar-Test-Signature in a.zip")
MARKER = Finding("confidential", "confidential.marker", Severity.MEDIUM, "'personal data'")
DEFAULTS = Policy(KINDS)
MARKER_HOLDS = Policy(KINDS, PolicyConfig({"confidential.marker": (Action.HOLD, Action.HOLD)}))
VIRUS_HOLDS = Policy(KINDS, PolicyConfig({"virus": (Action.HOLD, Action.HOLD)}))


def held(*findings: Finding, direction: str = "inbound") -> HeldMessage:
    return HeldMessage("q1", datetime.now(timezone.utc), direction, "pat@resident.example",
                       ("clerk@stanion-pc.gov.uk",), (), "127.0.0.1", "", findings=findings)


@pytest.mark.parametrize("policy,message,action,lesson", [
    (DEFAULTS, held(JUNK, SPAMD, ADVERT), "delete", "spam"),
    (DEFAULTS, held(JUNK, SPAMD), "block_sender", "spam"),
    (DEFAULTS, held(JUNK, SPAMD), "release", "ham"),
    (DEFAULTS, held(JUNK, SPAMD), "release_and_trust", "ham"),
    (DEFAULTS, held(JUNK, SPAMD), "show", None),
    # Held for who sent it, not for what it says.
    (DEFAULTS, held(BLOCKED), "delete", None),
    # A confidential document or a virus is deleted for what it carries.
    (DEFAULTS, held(JUNK, MARKER), "delete", "spam"),  # only tagged: junk alone held it
    (MARKER_HOLDS, held(JUNK, MARKER), "delete", None),
    (MARKER_HOLDS, held(MARKER), "release", None),
    (VIRUS_HOLDS, held(JUNK, VIRUS), "delete", None),
    (DEFAULTS, held(JUNK, VIRUS), "delete", None),
    # Held before findings were recorded: nothing says it was junk.
    (DEFAULTS, held(), "delete", None),
])
def test_lesson_of(policy, message, action, lesson):
    assert lesson_of(policy, message, action) == lesson
