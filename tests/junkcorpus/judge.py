"""Runs the corpus through the gateway's real inbound checks and counts what was held."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.assembly import assemble
from gateway.config import Config
from gateway.context import Envelope, MessageContext
from gateway.filters.junk import DEFAULT_PROTECTED
from gateway.people.senders import learn_recipients
from gateway.verdicts import Action
from tests.fixtures_dns import DnsServer
from tests.junkcorpus.build import Mail, outbound_recipients
from tests.junkcorpus.world import ALL_DOMAINS, CHAIR, CLERK, COUNCIL, LIST_IDS

__all__ = ["Judged", "config_overrides", "judge", "publish", "summary"]


@dataclass(frozen=True)
class Judged:
    mail: Mail
    held: bool
    codes: tuple[str, ...]  # every finding's code
    reasons: tuple[str, ...]  # what the clerk would read

    @property
    def false_hold(self) -> bool:
        """Good mail held, except mail with an attachment from an unknown sender, which the
        policy holds (and is held for that reason)."""
        if not self.mail.good or not self.held:
            return False
        return not (self.mail.attachment_from_unknown
                    and "attachment-unknown-sender" in self.codes)


def config_overrides(tmp_path: Path, dns_address: str) -> dict[str, Any]:
    """The council's settings: what an IT volunteer would write for Stanion."""
    return {
        "gateway": {"council_domains": [COUNCIL]},
        "inbound": {"filters": ["attachments", "junk", "trace"],
                    "deliver_to": f"maildir:{tmp_path / 'mailbox'}"},
        "dns": {"nameservers": [dns_address], "timeout": 2.0},
        "junk": {"protected_names": [*DEFAULT_PROTECTED, CLERK[0], CHAIR[0]],
                 "known_lists": [v.rpartition("<")[2].rstrip(">") for v in LIST_IDS.values()]},
        "senders": {"file": str(tmp_path / "known-senders.txt"),
                    "learned_file": str(tmp_path / "learned-senders.txt"),
                    "blocked_file": str(tmp_path / "blocked-senders.txt")},
    }


def publish(dns: DnsServer) -> None:
    for domain in ALL_DOMAINS:
        for name, rtype, value in domain.records():
            dns.add(name, rtype, value)


async def judge(mails: list[Mail], config: Config) -> list[Judged]:
    """Learn the councillors' correspondents as the gateway does after outbound mail, then run
    each message through the inbound checks."""
    await learn_recipients(config, [address for _, address in outbound_recipients()])
    pipeline = assemble(config).pipelines["inbound"]
    out = []
    for i, mail in enumerate(mails):
        ctx = MessageContext(id=f"corpus{i}", side="inbound",
                             envelope=Envelope(mail.mail_from, (mail.rcpt,)), data=mail.data,
                             client_address=mail.client_ip, client_helo=mail.helo)
        outcome = await pipeline.run(ctx)
        held = outcome.decision.action in (Action.HOLD, Action.REFUSE)
        out.append(Judged(mail, held, tuple(f.code for f in outcome.findings),
                          outcome.decision.reasons))
    return out


def summary(judged: list[Judged]) -> str:
    """The confusion matrix by category, as a Markdown table."""
    rows: dict[tuple[bool, str], Counter[str]] = {}
    for j in judged:
        c = rows.setdefault((j.mail.good, j.mail.category), Counter())
        c["n"] += 1
        if j.false_hold:
            c["false"] += 1
        elif j.held:
            c["held"] += 1
    lines = ["| kind | category | messages | held | of which by the attachment rule | "
             "passed |", "|---|---|---:|---:|---:|---:|"]
    for (good, category), c in sorted(rows.items(), key=lambda r: (not r[0][0], r[0][1])):
        held = c["held"] + c["false"]
        policy = c["held"] if good else 0
        lines.append(f"| {'good' if good else 'junk'} | {category} | {c['n']} | {held} | "
                     f"{policy if good else '–'} | {c['n'] - held} |")
    good = [j for j in judged if j.mail.good]
    junk = [j for j in judged if not j.mail.good]
    lines.append("")
    lines.append(f"good: {len(good)}, held falsely: {sum(j.false_hold for j in good)}, held by "
                 f"the attachment rule: {sum(j.held and not j.false_hold for j in good)}; "
                 f"junk: {len(junk)}, held: {sum(j.held for j in junk)} "
                 f"({100 * sum(j.held for j in junk) / max(1, len(junk)):.1f} %)")
    return "\n".join(lines)
