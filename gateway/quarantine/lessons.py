"""What the clerk's decision on held junk teaches SpamAssassin (with ``[junk] spamd`` set and
``spamd_learn`` on): a release says mail like it is wanted (ham); a delete, or blocking its
sender, says it is junk (spam).

Only mail held as junk alone teaches anything: every finding that would hold (or refuse) it is
the junk filter's ``junk``. A virus, a confidential document or a dangerous attachment is
deleted for what it carries, not because it reads like junk, and a blocked sender's mail is held
for who sent it; learning any of those as spam would teach the filter the wrong thing.

The lesson is given only once the resolution succeeded, and it cannot change it: spamd's trouble
is logged and goes into the resolution's audit line.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from gateway.adapters.spamd import Lesson, spamd_tell
from gateway.config import Config
from gateway.filters.junk import JunkConfig
from gateway.policy import Policy, Side
from gateway.quarantine.store import HeldMessage, QuarantineStore
from gateway.verdicts import Action

__all__ = ["LESSONS", "Learning", "Plan", "lesson_of", "plan", "teach"]

log = logging.getLogger(__name__)

LESSONS: dict[str, Lesson] = {
    "release": "ham",
    "release_and_trust": "ham",
    "delete": "spam",
    "block_sender": "spam",
}


def lesson_of(policy: Policy, held: HeldMessage, action: str) -> Lesson | None:
    """What resolving ``held`` with ``action`` teaches, or None when it teaches nothing."""
    lesson = LESSONS.get(action)
    side: Side = "inbound" if held.direction == "inbound" else "outbound"
    holding = {(f.filter, f.code) for f in held.findings
               if policy.action_for(f.code, side).strength >= Action.HOLD.strength}
    return lesson if holding == {("junk", "junk")} else None


@dataclass(frozen=True)
class Plan:
    """A lesson to give once the resolution has succeeded, with the bytes it is about."""

    lesson: Lesson
    spamd: tuple[str, int]
    deadline: float
    data: bytes  # read before the resolution: a delete takes the message away


@dataclass(frozen=True)
class Learning:
    """What spamd learned, for the audit line: ``learned`` when it did, else ``error`` why not."""

    learned: Lesson | None = None
    error: str | None = None


async def plan(config: Config, policy: Policy, store: QuarantineStore, held: HeldMessage,
               action: str) -> Plan | None:
    try:
        junk = config.section(JunkConfig)
    except KeyError:
        return None
    if junk.spamd is None or not junk.spamd_learn:
        return None
    lesson = lesson_of(policy, held, action)
    if lesson is None:
        return None
    try:
        data = await asyncio.to_thread(store.read, held.id)
    except OSError as e:  # the resolution will meet the same trouble and say so
        log.warning("id=%s not read for SpamAssassin to learn from: %s", held.id, e)
        return None
    return Plan(lesson, junk.spamd, junk.spamd_timeout, data)


async def teach(qid: str, p: Plan) -> Learning:
    """Give the lesson; never raises, whatever spamd does."""
    try:
        error = await spamd_tell(p.spamd, p.data, p.lesson, deadline=p.deadline)
    except Exception as e:
        log.exception("id=%s SpamAssassin was not taught %s", qid, p.lesson)
        error = f"unexpected error: {e}"
    if error is not None:
        log.warning("id=%s SpamAssassin did not learn it as %s: %s", qid, p.lesson, error)
        return Learning(error=error)
    log.info("id=%s SpamAssassin learned it as %s", qid, p.lesson)
    return Learning(learned=p.lesson)
