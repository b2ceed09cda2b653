"""Runs the steps of one side over one message: findings in, one decision out.

Two stages, as in Mailman's chain and pipeline. *Checks* (antivirus, attachments, junk,
confidential ...) run in the configured order; each reports findings, and a change the pipeline
applies at once (an ``Authentication-Results`` field). After each check the policy decides on
everything found so far: a refusal (or a deferral) ends the run, since nothing later can change
it; a hold is remembered with the message as it stood, and the run goes on, so every finding is
recorded. *Finishing* steps (footer, DKIM signature, trace header) run only for mail that will
be passed on.

Releasing held mail runs the same pipeline again after the check that held it, with the findings
the clerk saw approved: so released outbound mail gets its footer and signature like any other.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from gateway.context import MessageContext
from gateway.mime.headers import fold_header, tag_subject
from gateway.policy import Policy, Side
from gateway.verdicts import (
    Action,
    Change,
    Decision,
    Finding,
    Kind,
    Notice,
    Report,
    Severity,
    SmtpCode,
)

__all__ = [
    "PIPELINE_KINDS",
    "Filter",
    "HoldPoint",
    "Outcome",
    "Pipeline",
    "Stage",
    "StepRecord",
    "apply_change",
]

log = logging.getLogger(__name__)

PIPELINE_KINDS = (
    Kind("check-failed", "a check could not finish (an error or its time ran out)",
         Action.TEMPFAIL, Action.TEMPFAIL, tempfail=SmtpCode(451, "4.3.0")),
)


class Stage(StrEnum):
    CHECK = "check"
    FINISH = "finish"


class Filter(Protocol):
    """One step: a name, its stage, an optional deadline in seconds, and one entry point."""

    @property
    def name(self) -> str: ...

    @property
    def stage(self) -> Stage: ...

    @property
    def timeout(self) -> float | None: ...

    async def check(self, ctx: MessageContext) -> Report: ...


@dataclass(frozen=True)
class StepRecord:
    filter: str
    outcome: str  # "ok", "error" or "timeout"
    action: Action  # what the step's own findings call for
    ms: float


@dataclass(frozen=True)
class HoldPoint:
    """The check that first held the message, and the message as it stood after that check."""

    filter: str
    data: bytes


@dataclass(frozen=True)
class Outcome:
    decision: Decision
    findings: tuple[Finding, ...]
    steps: tuple[StepRecord, ...]
    data: bytes  # the message to pass on
    held: HoldPoint | None
    notices: tuple[Notice, ...]


def apply_change(data: bytes, change: Change | None) -> bytes:
    """The message with ``change`` made: new bytes if any, the subject prefix, then header
    fields put on top."""
    if change is None:
        return data
    if change.new_bytes is not None:
        data = change.new_bytes
    if change.subject_prefix:
        data = tag_subject(data, change.subject_prefix)
    if change.add_headers:
        data = b"".join(fold_header(n, v) for n, v in change.add_headers) + data
    return data


class Pipeline:
    """The built steps of one side, ready to run many messages (shared, stateless)."""

    def __init__(self, side: Side, filters: Sequence[Filter], policy: Policy,
                 default_timeout: float = 120.0):
        self.side = side
        self.policy = policy
        self.default_timeout = default_timeout
        self.checks = [f for f in filters if f.stage is Stage.CHECK]
        self.finishers = [f for f in filters if f.stage is Stage.FINISH]

    @property
    def names(self) -> list[str]:
        return [f.name for f in (*self.checks, *self.finishers)]

    def checks_up_to(self, name: str) -> list[str]:
        """The names of the checks that ran before (and including) ``name``."""
        names = [f.name for f in self.checks]
        return names[: names.index(name) + 1] if name in names else []

    async def run(self, ctx: MessageContext, *, after: str | None = None,
                  approved: frozenset[str] = frozenset()) -> Outcome:
        """Run the checks (those after ``after`` only, when resuming) and, for mail that is to
        be passed on, the finishing steps. ``approved`` codes no longer hold the message."""
        start = 0
        if after is not None:
            names = [f.name for f in self.checks]
            start = names.index(after) + 1 if after in names else 0
        steps: list[StepRecord] = []
        notices: list[Notice] = []
        held: HoldPoint | None = None
        for flt in self.checks[start:]:
            decision = await self._step(flt, ctx, approved, steps, notices)
            if decision.action in (Action.REFUSE, Action.TEMPFAIL):
                return self._outcome(decision, ctx, steps, held, notices)
            if decision.action is Action.HOLD and held is None:
                held = HoldPoint(flt.name, ctx.data)
        decision = self.policy.decide(ctx.findings, self.side, approved)
        if decision.action in (Action.DELIVER, Action.TAG):
            for flt in self.finishers:
                decision = await self._step(flt, ctx, approved, steps, notices)
                if decision.action not in (Action.DELIVER, Action.TAG):
                    break
        return self._outcome(decision, ctx, steps, held, notices)

    def _outcome(self, decision: Decision, ctx: MessageContext, steps: list[StepRecord],
                 held: HoldPoint | None, notices: list[Notice]) -> Outcome:
        if decision.action is not Action.HOLD:
            held = None
        elif held is None:  # held for what an earlier run found: resume from the start
            held = HoldPoint("", ctx.data)
        return Outcome(decision, tuple(ctx.findings), tuple(steps), ctx.data, held,
                       tuple(notices))

    async def _step(self, flt: Filter, ctx: MessageContext, approved: frozenset[str],
                    steps: list[StepRecord], notices: list[Notice]) -> Decision:
        started = time.monotonic()
        report, outcome = await self._run_one(flt, ctx)
        ctx.replace_data(apply_change(ctx.data, report.change))
        ctx.findings.extend(report.findings)
        own = self.policy.decide(report.findings, self.side, approved).action
        if own is Action.TAG:
            ctx.replace_data(apply_change(ctx.data, report.tag))
        notices.extend(report.notices)
        steps.append(StepRecord(flt.name, outcome, own, (time.monotonic() - started) * 1000))
        return self.policy.decide(ctx.findings, self.side, approved)

    async def _run_one(self, flt: Filter, ctx: MessageContext) -> tuple[Report, str]:
        timeout = flt.timeout or self.default_timeout
        try:
            async with asyncio.timeout(timeout):
                return await flt.check(ctx), "ok"
        except TimeoutError:
            log.error("id=%s filter=%s timed out after %.0fs", ctx.id, flt.name, timeout)
            outcome = "timeout"
        except Exception:
            log.exception("id=%s filter=%s failed", ctx.id, flt.name)
            outcome = "error"
        return Report((Finding(
            flt.name, "check-failed", Severity.MEDIUM,
            f"the {flt.name} check could not finish ({outcome})",
            f"The {flt.name} check could not finish; please try again later"),)), outcome
