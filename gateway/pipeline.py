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
import struct
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from email.errors import MessageError
from enum import StrEnum
from typing import Protocol, overload
from zipfile import BadZipFile

from gateway.content import Content
from gateway.context import MessageContext
from gateway.mime.headers import fold_header, tag_subject
from gateway.mime.limits import MimeLimits, measure, too_complex
from gateway.mime.workers import in_worker
from gateway.policy import Policy, Side
from gateway.verdicts import (
    Action,
    Change,
    Decision,
    Finding,
    Kind,
    Notice,
    Release,
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

_FORCE_ADVICE = ("Delete it unless you expected it; only the IT volunteer can release it, since "
                 "the gateway could not check it.")
PIPELINE_KINDS = (
    Kind("check-failed", "a check could not finish for a reason that can pass (a service "
         "down, its time ran out)", Action.TEMPFAIL, Action.TEMPFAIL,
         tempfail=SmtpCode(451, "4.3.0")),
    Kind("malformed", "the message is built in a way a check cannot read (the same on every "
         "try)", Action.HOLD, Action.REFUSE, Release.FORCE, refuse=SmtpCode(554, "5.6.0"),
         advice=_FORCE_ADVICE),
    Kind("too-complex", "too many parts, parts or HTML nested too deep, or too much text, to "
         "check safely",
         Action.HOLD, Action.REFUSE, Release.FORCE, refuse=SmtpCode(554, "5.6.0"),
         advice=_FORCE_ADVICE),
)
# What reading a message raises when the message itself is at fault: it fails the same way on
# every try, so it is a finding, not a deferral. Anything else (a service down, a full disk, a
# fault in the gateway) defers the message: that can pass.
UNREADABLE = (ValueError, LookupError, RecursionError, EOFError, MessageError, BadZipFile,
              zlib.error, struct.error)


class Stage(StrEnum):
    CHECK = "check"
    FINISH = "finish"


class Filter(Protocol):
    """One step: a name, its stage, an optional deadline in seconds, and one entry point.
    A filter with ``reads_content = False`` (it looks at the bytes or the envelope only) still
    runs on a message too complex to parse; the others are skipped for it.

    A check may also have ``prepare(ctx)``: the CPU work it can do on the message alone. The
    pipeline runs every check's ``prepare`` in one visit to a worker thread, with the parse,
    before the first check (each hand-off to a thread and back costs the event loop a wake-up
    and two changes of the interpreter lock); ``check`` takes the result from
    :meth:`MessageContext.prepared`, and does the work itself when there is none."""

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
    content: Content

    @property
    def data(self) -> bytes:
        return self.content.joined()


@dataclass(frozen=True)
class Outcome:
    decision: Decision
    findings: tuple[Finding, ...]
    steps: tuple[StepRecord, ...]
    content: Content  # the message to pass on
    held: HoldPoint | None
    notices: tuple[Notice, ...]

    @property
    def data(self) -> bytes:
        return self.content.joined()


@overload
def apply_change(data: bytes, change: Change | None) -> bytes: ...


@overload
def apply_change(data: Content, change: Change | None) -> Content: ...


def apply_change(data: bytes | Content, change: Change | None) -> bytes | Content:
    """The message with ``change`` made: new bytes if any, the subject prefix, then header
    fields and raw header bytes put on top. Given a :class:`Content`, only its header bytes
    are rewritten."""
    if isinstance(data, bytes):
        return apply_change(Content(data), change).joined()
    if change is None:
        return data
    if change.new_bytes is not None:
        data = Content(change.new_bytes)
    if change.subject_prefix:
        prefix = change.subject_prefix
        data = data.edit_head(lambda head: tag_subject(head, prefix))
    if change.add_headers:
        data = data.prepend(b"".join(fold_header(n, v) for n, v in change.add_headers))
    return data.prepend(change.top)


class Pipeline:
    """The built steps of one side, ready to run many messages (shared, stateless)."""

    def __init__(self, side: Side, filters: Sequence[Filter], policy: Policy,
                 default_timeout: float = 120.0, limits: MimeLimits | None = None):
        self.side = side
        self.policy = policy
        self.default_timeout = default_timeout
        self.limits = limits or MimeLimits()
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
        if not any(f.code == "too-complex" for f in ctx.findings):
            preparing = [f for f in self.checks[start:] if hasattr(f, "prepare")]
            try:
                async with asyncio.timeout(self.default_timeout):
                    why = await in_worker(ctx.size, self._measure_and_prepare, ctx, preparing)
            except TimeoutError:
                log.error("id=%s the checks' work on the message timed out after %.0fs",
                          ctx.id, self.default_timeout)
                ctx.findings.append(Finding(
                    "pipeline", "check-failed", Severity.MEDIUM,
                    "the checks could not finish (timeout)",
                    "The checks could not finish; please try again later"))
                decision = self.policy.decide(ctx.findings, self.side, approved)
                return self._outcome(decision, ctx, steps, held, notices)
            if why:
                ctx.findings.append(Finding("pipeline", "too-complex", Severity.MEDIUM,
                                            f"the message could not be checked: {why}",
                                            f"Message rejected: {why}"))
        for flt in self.checks[start:]:
            decision = await self._step(flt, ctx, approved, steps, notices)
            if decision.action in (Action.REFUSE, Action.TEMPFAIL):
                return self._outcome(decision, ctx, steps, held, notices)
            if decision.action is Action.HOLD and held is None:
                held = HoldPoint(flt.name, ctx.content)
        decision = self.policy.decide(ctx.findings, self.side, approved)
        if decision.action in (Action.DELIVER, Action.TAG):
            for flt in self.finishers:
                decision = await self._step(flt, ctx, approved, steps, notices)
                if decision.action not in (Action.DELIVER, Action.TAG):
                    break
        return self._outcome(decision, ctx, steps, held, notices)

    def _measure_and_prepare(self, ctx: MessageContext, preparing: list[Filter]) -> str | None:
        """In a worker thread: why the message is too complex to check, or (None) its parse
        and what ``preparing`` work out ahead, each result kept with the message it is of."""
        why = too_complex(measure(ctx.data, self.limits), self.limits)
        if why is not None or not preparing:
            return why
        content = ctx.content
        try:
            _ = ctx.message  # parsed here, once for every check
        except Exception:
            return None  # each check meets the fault itself, as it would have
        for flt in preparing:
            try:
                result: object = flt.prepare(ctx)  # type: ignore[attr-defined]
            except Exception as e:  # raised again by prepared(), in the check's own turn
                result = e
            ctx.keep_prepared(flt.name, content, result)
        return None

    def _outcome(self, decision: Decision, ctx: MessageContext, steps: list[StepRecord],
                 held: HoldPoint | None, notices: list[Notice]) -> Outcome:
        if decision.action is not Action.HOLD:
            held = None
        elif held is None:  # held for what an earlier run found: resume from the start
            held = HoldPoint("", ctx.content)
        return Outcome(decision, tuple(ctx.findings), tuple(steps), ctx.content, held,
                       tuple(notices))

    async def _step(self, flt: Filter, ctx: MessageContext, approved: frozenset[str],
                    steps: list[StepRecord], notices: list[Notice]) -> Decision:
        started = time.monotonic()
        report, outcome = await self._run_one(flt, ctx)
        ctx.replace_content(apply_change(ctx.content, report.change))
        ctx.findings.extend(report.findings)
        own = self.policy.decide(report.findings, self.side, approved).action
        if own is Action.TAG:
            ctx.replace_content(apply_change(ctx.content, report.tag))
        notices.extend(report.notices)
        steps.append(StepRecord(flt.name, outcome, own, (time.monotonic() - started) * 1000))
        return self.policy.decide(ctx.findings, self.side, approved)

    async def _run_one(self, flt: Filter, ctx: MessageContext) -> tuple[Report, str]:
        if getattr(flt, "reads_content", True) and any(
                f.code == "too-complex" for f in ctx.findings):
            return Report(), "skipped"
        timeout = flt.timeout or self.default_timeout
        try:
            async with asyncio.timeout(timeout):
                return await flt.check(ctx), "ok"
        except TimeoutError:
            log.error("id=%s filter=%s timed out after %.0fs", ctx.id, flt.name, timeout)
            outcome = "timeout"
        except UNREADABLE as e:
            # The same on every try: a finding the policy decides, never a retry loop.
            log.warning("id=%s filter=%s cannot read the message: %r", ctx.id, flt.name, e)
            return Report((Finding(
                flt.name, "malformed", Severity.MEDIUM,
                f"the {flt.name} check could not read the message ({_plain(e)})",
                "Message rejected: it is built in a way the gateway cannot read "
                f"({_plain(e)}); please send it again in another form"),)), "malformed"
        except Exception:
            log.exception("id=%s filter=%s failed", ctx.id, flt.name)
            outcome = "error"
        return Report((Finding(
            flt.name, "check-failed", Severity.MEDIUM,
            f"the {flt.name} check could not finish ({outcome})",
            f"The {flt.name} check could not finish; please try again later"),)), outcome


def _plain(error: Exception) -> str:
    """An exception in a few words a person can pass on: its kind, never a traceback."""
    kinds = {RecursionError: "parts nested too deep", UnicodeError: "a character set it "
             "cannot decode", LookupError: "an unknown character set", ValueError: "a value "
             "that is not valid"}
    for kind, words in kinds.items():
        if isinstance(error, kind):
            return words
    return "a part that cannot be read"
