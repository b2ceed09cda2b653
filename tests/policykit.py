"""Filter tests: what one filter reports about one message, and what the one policy makes of it.

A test runs a single filter's ``check`` on an inline message, then asks the policy for the
decision on the findings, as the pipeline does after each check: with every kind's own defaults
(:data:`POLICY`) or with the ``[policy]`` table of a parsed config (:func:`policy_of`).
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from gateway.assembly import BY_NAME, KINDS
from gateway.config import Config
from gateway.context import Envelope, MessageContext
from gateway.delivery.notices import compose
from gateway.pipeline import Filter
from gateway.policy import Policy, PolicyConfig, Side
from gateway.verdicts import Action, Decision, Report

__all__ = ["POLICY", "Checked", "build", "check", "context", "new_spelling", "notes_of",
           "policy_of"]

POLICY = Policy(KINDS)  # no [policy] table: each kind's default action


def policy_of(config: Config) -> Policy:
    """The policy a gateway with this config decides with."""
    return Policy(KINDS, config.section(PolicyConfig))


def build(config: Config, name: str) -> Filter:
    """The filter ``name`` built from ``config``, as the assembly builds it."""
    return BY_NAME[name].build(config)


def context(data: bytes, *, side: Side = "outbound", mail_from: str = "clerk@stanion-pc.gov.uk",
            rcpts: Sequence[str] = ("resident@example.org",)) -> MessageContext:
    return MessageContext(id="t1", side=side, envelope=Envelope(mail_from, tuple(rcpts)),
                          data=data)


@dataclass(frozen=True)
class Checked:
    """One filter's report on one message and the policy's decision on its findings."""

    report: Report
    decision: Decision
    ctx: MessageContext

    @property
    def action(self) -> Action:
        return self.decision.action

    @property
    def codes(self) -> list[str]:
        return [f.code for f in self.report.findings]

    @property
    def tag_field(self) -> tuple[str, str]:
        """The one header field the filter adds when the policy tags the message."""
        assert self.report.tag is not None, self.report
        (field,) = self.report.tag.add_headers
        return field

    def notices(self, config: Config) -> list[EmailMessage]:
        """The notices that would be sent now that the message's fate is the decision's."""
        mails = (compose(config, n, self.decision.action, self.ctx) for n in self.report.notices)
        return [m for m in mails if m is not None]


async def check(flt: Filter, ctx: MessageContext, policy: Policy = POLICY) -> Checked:
    report = await flt.check(ctx)
    return Checked(report, policy.decide(report.findings, ctx.side), ctx)


def notes_of(config: Config) -> dict[str, str]:
    """The config's notes about old spellings, by key."""
    return {n.key: n.message for n in config.notes}


def new_spelling(config: Config, key: str) -> dict[str, Any]:
    """What the config's note about the old ``key`` says to write in [policy], read as TOML."""
    message = notes_of(config)[key]
    said, sep, toml = message.partition("in [policy] write: ")
    assert sep and said.startswith("is the old spelling (still read)"), message
    return tomllib.loads(toml)
