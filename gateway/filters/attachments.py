"""Stops dangerous attachments: programs and scripts, Office files with macros, double
extensions, content that contradicts its declared type, and password-protected archives from
outside. Looks inside ZIP archives and forwarded messages.

Policy: Stanion "Email" (attachments are opened only from trusted sources; "if in any doubt - do
not open") and Kirkham rule 14. Mail sent by councillors is refused so the sender can fix it;
mail from outside is held for the clerk (both configurable). The rules themselves are in
:mod:`gateway.rules.attachments`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from gateway.config import Config, Section, register_section, section
from gateway.context import MessageContext
from gateway.filters import register
from gateway.rules.attachments import (
    DEFAULT_BLOCKED,
    DEFAULT_MACRO,
    AttachmentRules,
    Danger,
    ascii_safe,
    inspect_message,
)
from gateway.verdicts import Accept, Finding, Quarantine, Reject, Verdict

__all__ = ["AttachmentsConfig", "AttachmentsFilter", "parse_attachments", "verdict_for"]

NAME = "attachments"
# A reply line names a few files; the audit log and the quarantine keep them all.
MAX_IN_REPLY = 3


@dataclass(frozen=True)
class AttachmentsConfig:
    rules: AttachmentRules = AttachmentRules()
    inbound_action: str = "quarantine"  # "quarantine" | "reject"
    outbound_action: str = "reject"  # "reject" | "quarantine"


def _extensions(s: Section, name: str, default: tuple[str, ...]) -> frozenset[str]:
    out = set()
    for i, ext in enumerate(s.str_list(name, default)):
        clean = ext.strip().lstrip(".").lower()
        if not clean or any(c in clean for c in " /\\"):
            s.problem(f"{name}[{i}]", f'"{ext}" is not a file extension like "exe"')
            continue
        out.add(clean)
    return frozenset(out)


def parse_attachments(s: Section) -> AttachmentsConfig:
    rules = AttachmentRules(
        blocked_extensions=_extensions(s, "blocked_extensions", DEFAULT_BLOCKED),
        macro_extensions=_extensions(s, "macro_extensions", DEFAULT_MACRO),
        double_extensions=s.flag("double_extensions", True),
        check_content=s.flag("check_content", True),
        look_inside_archives=s.flag("look_inside_archives", True),
        block_encrypted_archives=s.flag("block_encrypted_archives", True),
        max_archive_size=s.size("max_archive_size", "25MiB"),
        max_archive_entries=s.integer("max_archive_entries", 1000, minimum=1, maximum=100000),
        max_depth=s.integer("max_depth", 3, minimum=1, maximum=10),
    )
    cfg = AttachmentsConfig(
        rules=rules,
        inbound_action=s.choice("inbound_action", "quarantine", ("quarantine", "reject")),
        outbound_action=s.choice("outbound_action", "reject", ("reject", "quarantine")),
    )
    s.finish()
    return cfg


register_section("attachments")(parse_attachments)


def verdict_for(dangers: list[Danger], action: str) -> Verdict:
    """Accept when nothing is dangerous; else reject or quarantine, naming the files."""
    if not dangers:
        return Accept()
    findings = tuple(Finding(NAME, d.rule, d.text) for d in dangers)
    if action == "quarantine":
        return Quarantine(tuple(d.text for d in dangers), findings)
    texts = [d.text for d in dangers[:MAX_IN_REPLY]]
    more = len(dangers) - MAX_IN_REPLY
    tail = f" (and {more} more)" if more > 0 else ""
    return Reject(ascii_safe("Message rejected: " + "; ".join(texts) + tail), 554, "5.7.1",
                  findings)


class AttachmentsFilter:
    name = NAME

    def __init__(self, cfg: AttachmentsConfig):
        self.cfg = cfg

    async def check(self, ctx: MessageContext) -> Verdict:
        from_outside = ctx.direction == "inbound"
        # Decoding and unpacking a large message is CPU work: keep it off the event loop.
        dangers = await asyncio.to_thread(
            lambda: inspect_message(ctx.message, self.cfg.rules, from_outside=from_outside))
        action = self.cfg.inbound_action if from_outside else self.cfg.outbound_action
        return verdict_for(dangers, action)


@register(NAME, order=30, summary="stops programs, macro files, disguised and locked attachments",
          sides=("inbound", "outbound"))
def build(config: Config) -> AttachmentsFilter:
    return AttachmentsFilter(parse_attachments(section(config, "attachments")))
