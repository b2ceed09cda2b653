"""Stops dangerous attachments: programs and scripts, Office files with macros, double
extensions, content that contradicts its declared type, and password-protected archives from
outside. Looks inside ZIP archives and forwarded messages.

Policy: Stanion "Email" (attachments are opened only from trusted sources; "if in any doubt - do
not open") and Kirkham rule 14. By default mail sent by councillors is refused so the sender can
fix it, and mail from outside is held for the clerk; only the IT volunteer can release it. The
rules themselves are in :mod:`gateway.rules.attachments`.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.config import Section
from gateway.context import MessageContext
from gateway.mime.workers import in_worker
from gateway.pipeline import Stage
from gateway.rules.attachments import (
    DEFAULT_BLOCKED,
    DEFAULT_MACRO,
    AttachmentRules,
    Danger,
    inspect_message,
)
from gateway.rules.wording import ascii_safe
from gateway.verdicts import Action, Finding, Kind, Release, Report, Severity

__all__ = ["KINDS", "AttachmentsConfig", "AttachmentsFilter", "parse_attachments", "report"]

NAME = "attachments"
# A reply line names a few files; the audit log and the quarantine keep them all.
MAX_IN_REPLY = 3
_ADVICE = ("Delete it unless the sender is known and expected to send it; only the IT volunteer "
           "can release it.")


def _kind(rule: str, summary: str) -> Kind:
    return Kind(f"attachment.{rule}", summary, Action.HOLD, Action.REFUSE, Release.FORCE,
                advice=_ADVICE)


KINDS = (
    _kind("blocked-type", "a program, script or other blocked file type"),
    _kind("macro", "an Office file that can carry macros"),
    _kind("double-extension", "a file name with two extensions (invoice.pdf.exe)"),
    _kind("disguised-name", "a file name with hidden characters that change how it reads"),
    _kind("type-mismatch", "content that is not what the file name says"),
    _kind("encrypted-archive", "a password-protected archive that cannot be checked"),
    _kind("damaged-archive", "an archive that cannot be opened to be checked"),
    _kind("archive-limits", "an archive too large or too deeply nested to check"),
)


@dataclass(frozen=True)
class AttachmentsConfig:
    rules: AttachmentRules = AttachmentRules()


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
    s.finish()
    return AttachmentsConfig(rules)


def report(dangers: list[Danger]) -> Report:
    """One finding a dangerous file; the refusal names the first few."""
    if not dangers:
        return Report()
    texts = [d.text for d in dangers[:MAX_IN_REPLY]]
    more = len(dangers) - MAX_IN_REPLY
    tail = f" (and {more} more)" if more > 0 else ""
    reply = ascii_safe("Message rejected: " + "; ".join(texts) + tail)
    return Report(tuple(Finding(NAME, d.finding_code, Severity.HIGH, d.text, reply)
                        for d in dangers))


class AttachmentsFilter:
    name = NAME
    stage = Stage.CHECK
    timeout: float | None = None

    def __init__(self, cfg: AttachmentsConfig):
        self.cfg = cfg

    def prepare(self, ctx: MessageContext) -> list[Danger]:
        """Decoding and unpacking is CPU work: in a worker thread, never on the event loop."""
        return inspect_message(ctx.message, self.cfg.rules, from_outside=ctx.side == "inbound")

    async def check(self, ctx: MessageContext) -> Report:
        dangers = ctx.prepared(self.name)
        if dangers is None:
            dangers = await in_worker(ctx.size, self.prepare, ctx)
        return report(dangers)
