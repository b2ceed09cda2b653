"""What a filter reports about one message, and the one decision the policy makes of it.

Filters state facts: each :class:`Finding` has a stable machine ``code`` (``virus``,
``attachment.macro``, ``confidential.marker``), a :class:`Severity`, a plain-English sentence and
the filter's name. A filter that changes the message returns its :class:`Change` beside them. What
the gateway *does* is decided once, by :mod:`gateway.policy`, from all findings together: one of
the :class:`Action` values, the strongest winning. Only the SMTP layer turns a :class:`Decision`
into a reply line.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum

__all__ = [
    "Action",
    "Change",
    "Decision",
    "Finding",
    "Kind",
    "Notice",
    "Release",
    "Report",
    "Severity",
    "SmtpCode",
]


class Severity(IntEnum):
    """How much a finding matters to the person reading about it."""

    INFO = 0  # recorded only: "footer added", "DKIM-signed"
    LOW = 1  # probably advertising or bulk mail
    MEDIUM = 2  # suspicious, or against the council's policy
    HIGH = 3  # dangerous: a virus, a program, phishing

    @property
    def word(self) -> str:
        return self.name.lower()


class Action(StrEnum):
    """What the gateway does with a message; later members are stronger."""

    DELIVER = "deliver"
    TAG = "tag"  # deliver, marked with a header (and the junk subject prefix)
    HOLD = "hold"  # keep in the quarantine for the clerk
    TEMPFAIL = "tempfail"  # 4xx: a fault that can pass (scanner down); the sender retries
    REFUSE = "refuse"  # 5xx: the sender's server bounces it

    @property
    def strength(self) -> int:
        return _STRENGTH[self]


_STRENGTH = {a: i for i, a in enumerate(Action)}


class Release(StrEnum):
    """Who may let held mail with a finding of this kind go on."""

    YES = "yes"  # the clerk, from the page or the command line
    FORCE = "force"  # only the IT volunteer: ``quarantine release ID --force``
    NEVER = "never"  # nobody: a virus is never passed on


@dataclass(frozen=True)
class SmtpCode:
    code: int
    enhanced: str

    def __post_init__(self) -> None:
        first = str(self.code)[0]
        parts = self.enhanced.split(".")
        if first not in "45" or len(parts) != 3 or parts[0] != first \
                or not all(p.isdigit() for p in parts):
            raise ValueError(f"{self.code} {self.enhanced} is not a 4xx/5xx reply with a "
                             "matching enhanced status code")


@dataclass(frozen=True)
class Kind:
    """One finding code a filter can report, with what it means by default.

    ``inbound``/``outbound`` are the default actions (the ``[policy]`` table overrides them);
    ``refuse``/``tempfail`` the reply codes used when the policy refuses or defers for it.
    """

    code: str
    summary: str  # what it means, for the policy table and check-config
    inbound: Action = Action.DELIVER
    outbound: Action = Action.DELIVER
    release: Release = Release.YES
    refuse: SmtpCode = SmtpCode(554, "5.7.1")
    tempfail: SmtpCode = SmtpCode(451, "4.3.0")
    advice: str = ""  # the recommended step for the clerk when this holds a message


@dataclass(frozen=True)
class Finding:
    """One fact a filter established, e.g. "virus Eicar-Test-Signature in invoice.zip"."""

    filter: str  # the filter's name
    code: str  # one of the filter's Kind codes
    severity: Severity
    text: str  # one plain-English sentence: the clerk, the audit log, the hold reason
    reply: str = ""  # what the sender's server is told when this refuses; "" means ``text``

    @property
    def sender_text(self) -> str:
        return self.reply or self.text


@dataclass(frozen=True)
class Change:
    """How a filter changes the message: the whole message replaced (``new_bytes``), a prefix
    put in front of the Subject, header fields put on top (nothing below is refolded), header
    bytes put on top as they are (``top``: a signature over all that is below); in that order,
    so a change never undoes what the message became before it."""

    add_headers: tuple[tuple[str, str], ...] = ()
    new_bytes: bytes | None = None
    subject_prefix: str = ""
    top: bytes = b""


@dataclass(frozen=True)
class Notice:
    """A short mail the gateway sends about a message once its fate is known.

    ``body`` may contain ``{outcome}``, filled with the sentence of ``outcomes`` for the action
    taken; a notice whose action is not in ``outcomes`` is not sent. ``to`` empty means the
    message's own (council) sender.
    """

    subject: str
    body: str
    outcomes: tuple[tuple[Action, str], ...]
    to: tuple[str, ...] = ()

    def for_action(self, action: Action) -> str | None:
        for a, sentence in self.outcomes:
            if a is action:
                return self.body.replace("{outcome}", sentence)
        return None


@dataclass(frozen=True)
class Report:
    """What one filter returns: its findings, the change it always makes, and the change it makes
    only when the policy's action for its own findings is ``tag``."""

    findings: tuple[Finding, ...] = ()
    change: Change | None = None
    tag: Change | None = None
    notices: tuple[Notice, ...] = ()


@dataclass(frozen=True)
class Decision:
    """The policy's one answer for a message: the action and the findings that call for it."""

    action: Action
    because: tuple[Finding, ...] = ()
    smtp: SmtpCode | None = None  # for refuse and tempfail
    text: str = ""  # the reply text for refuse and tempfail (plain ASCII, one line)

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(f.text for f in self.because)
