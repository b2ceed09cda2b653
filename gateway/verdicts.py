"""What a filter decides about one message.

Filters report *findings* (facts, in plain English) and return one verdict. Only the SMTP layer
turns verdicts into reply lines. ``Accept`` and ``Modify`` let the pipeline go on; ``Reject``,
``TempFail`` and ``Quarantine`` are decisive: the first one wins.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "Finding",
    "Accept",
    "Modify",
    "Reject",
    "TempFail",
    "Quarantine",
    "Verdict",
    "is_decisive",
]


@dataclass(frozen=True)
class Finding:
    """One fact a filter established, e.g. ``virus Eicar-Test-Signature in invoice.zip``."""

    filter: str  # the filter's registered name
    code: str  # short machine tag, e.g. "virus", "marker", "unknown-sender-attachment"
    text: str  # one plain-English sentence for the clerk, the audit log and SMTP replies


@dataclass(frozen=True)
class Accept:
    findings: tuple[Finding, ...] = ()


@dataclass(frozen=True)
class Modify:
    """Accept with changes.

    ``add_headers`` are prepended to the message as they are (no refolding of the rest);
    ``new_bytes`` replaces the whole message (header additions are applied after it).
    """

    add_headers: tuple[tuple[str, str], ...] = ()
    new_bytes: bytes | None = None
    findings: tuple[Finding, ...] = ()


def _check_code(code: int, enhanced: str, first: str) -> None:
    if not (int(first) * 100 <= code < int(first) * 100 + 100):
        raise ValueError(f"reply code {code} must be {first}xx")
    parts = enhanced.split(".")
    if len(parts) != 3 or parts[0] != first or not all(p.isdigit() for p in parts):
        raise ValueError(f"enhanced status {enhanced!r} must look like {first}.x.y")


@dataclass(frozen=True)
class Reject:
    """Permanent refusal: the sender's server bounces it (5xx)."""

    text: str
    code: int = 554
    enhanced: str = "5.7.1"
    findings: tuple[Finding, ...] = ()

    def __post_init__(self) -> None:
        _check_code(self.code, self.enhanced, "5")


@dataclass(frozen=True)
class TempFail:
    """Temporary refusal: the sender's server tries again later (4xx)."""

    text: str
    code: int = 451
    enhanced: str = "4.3.0"
    findings: tuple[Finding, ...] = ()

    def __post_init__(self) -> None:
        _check_code(self.code, self.enhanced, "4")


@dataclass(frozen=True)
class Quarantine:
    """Hold the message for the clerk; the client is told 250 once it is safely on disk.

    ``add_headers`` go on top of the held copy (e.g. Authentication-Results), so a message the
    clerk releases carries what the gateway found out about it."""

    reasons: tuple[str, ...]
    findings: tuple[Finding, ...] = field(default=())
    add_headers: tuple[tuple[str, str], ...] = ()


Verdict = Accept | Modify | Reject | TempFail | Quarantine


def is_decisive(verdict: Verdict) -> bool:
    return isinstance(verdict, Reject | TempFail | Quarantine)
