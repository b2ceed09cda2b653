"""What a check found: ok, warning or problem, a sentence and the fix; typed and frozen."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Result", "Status", "bounded", "exit_status", "ok", "problem", "warning", "worst"]


class Status(StrEnum):
    OK = "ok"
    WARNING = "warning"  # works, but probably not as meant, or soon will not
    PROBLEM = "problem"  # does not work, or works against the council's policy

    @property
    def rank(self) -> int:
        return {Status.OK: 0, Status.WARNING: 1, Status.PROBLEM: 2}[self]


@dataclass(frozen=True)
class Result:
    """One finding of the doctor. ``check`` is a dotted name (``dns.mx``, ``tls.expiry``) whose
    first word is the area; ``subject`` what was checked (a domain, a file, a next hop)."""

    check: str
    subject: str
    status: Status
    sentence: str
    fix: str = ""  # empty when there is nothing to do

    @property
    def area(self) -> str:
        return self.check.partition(".")[0]

    def as_dict(self) -> dict[str, str]:
        return {"check": self.check, "subject": self.subject, "status": self.status.value,
                "sentence": self.sentence, "fix": self.fix}


def ok(check: str, subject: str, sentence: str) -> Result:
    return Result(check, subject, Status.OK, sentence)


def warning(check: str, subject: str, sentence: str, fix: str) -> Result:
    return Result(check, subject, Status.WARNING, sentence, fix)


def problem(check: str, subject: str, sentence: str, fix: str) -> Result:
    return Result(check, subject, Status.PROBLEM, sentence, fix)


def worst(statuses: Iterable[Status]) -> Status:
    return max(statuses, key=lambda s: s.rank, default=Status.OK)


def exit_status(results: Iterable[Result]) -> int:
    """0 when nothing is a problem (warnings allowed), 1 otherwise."""
    return 1 if worst(r.status for r in results) is Status.PROBLEM else 0


async def bounded(check: str, subject: str, work: Awaitable[Result | Sequence[Result]],
                  seconds: float) -> list[Result]:
    """Run one check under an absolute deadline; a check that overruns or fails is a problem
    with a sentence, never an exception or a hang."""
    try:
        async with asyncio.timeout(seconds):
            found = await work
    except TimeoutError:
        unit = "second" if seconds == 1 else "seconds"
        return [problem(check, subject, f"The check of {subject} did not finish within "
                                        f"{seconds:g} {unit}.",
                        "Something it waits for does not answer; see the other results, or "
                        "run it again with a longer --timeout.")]
    except Exception as e:  # a fault in the doctor itself must not hide the other results
        return [problem(check, subject, f"The check of {subject} could not finish "
                                        f"({type(e).__name__}: {e}).",
                        "Run it again with -v, and report it to the gateway's maintainers if "
                        "it keeps happening.")]
    return [found] if isinstance(found, Result) else list(found)
