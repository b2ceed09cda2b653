"""Every message, both directions, is scanned by clamd before anyone can open it.

Policy: Stanion "Virus Protection" (all mail and attachments are virus-checked before they are
opened; the council must not distribute viruses; detected viruses are reported to the Clerk/RFO
and the Chairman) and Kirkham rules 2 and 14.

What a scan reply means is :func:`assess`, a pure function; clamd itself is reached through
:class:`gateway.adapters.clamd.ClamdClient`. The scan sees the message as it arrived, before the
gateway adds anything. The scanner failing is never a pass: by default the sender is told to try
again later (451 4.7.1); a virus is never released from the quarantine.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass
from email.message import EmailMessage

from gateway.adapters.clamd import (
    HEADER_ROOM,
    MIB,
    ClamdAddress,
    ClamdClient,
    Outcome,
    ScanReply,
    parse_address,
)
from gateway.config import GatewayConfig, Section
from gateway.context import MessageContext
from gateway.mime.headers import shown_field
from gateway.mime.payload import decoded_payload
from gateway.pipeline import Stage
from gateway.rules.wording import ascii_safe, display_name
from gateway.verdicts import (
    Action,
    Change,
    Finding,
    Kind,
    Notice,
    Release,
    Report,
    Severity,
    SmtpCode,
)

__all__ = ["KINDS", "AntivirusFilter", "ClamavConfig", "alert_text", "assess",
           "locate_infected_part", "parse_clamav"]

log = logging.getLogger(__name__)

NAME = "antivirus"
HEADER = "X-Virus-Scanned"
# Rescanning attachments one by one only serves to name the file in the reply; bounded.
MAX_PARTS_TO_LOCATE = 20
# clamd addresses already reported as having only test signatures (said once per process).
_WARNED: set[str] = set()

KINDS = (
    Kind("virus", "ClamAV found a virus", Action.REFUSE, Action.REFUSE, Release.NEVER,
         advice="Delete it. A message with a virus is never released."),
    Kind("unscannable.too-big", "too big for the virus scanner", Action.REFUSE, Action.REFUSE,
         Release.FORCE, refuse=SmtpCode(552, "5.3.4"), tempfail=SmtpCode(451, "4.3.4"),
         advice="Delete it unless the IT volunteer can check it another way."),
    Kind("unscannable.limits", "archives too large or nested too deeply to scan completely",
         Action.REFUSE, Action.REFUSE, Release.FORCE, tempfail=SmtpCode(451, "4.7.1"),
         advice="Delete it unless the IT volunteer can check it another way."),
    Kind("scan-failed", "the virus scanner could not be reached or did not answer in time",
         Action.TEMPFAIL, Action.TEMPFAIL, Release.FORCE, tempfail=SmtpCode(451, "4.7.1"),
         advice="Ask the IT volunteer to check the virus scanner."),
)


@dataclass(frozen=True)
class ClamavConfig:
    addresses: tuple[ClamdAddress, ...] = (ClamdAddress("tcp", host="127.0.0.1", port=3310),)
    timeout: float = 30.0
    alert_to: tuple[str, ...] = ()
    # clamd's StreamMaxLength (0: as the shipped clamd.conf sets it from max_message_size).
    # Longer messages are not sent at all: over its limit clamd answers and closes at once, and
    # the connection reset that follows can swallow that answer.
    stream_max_length: int = 0


def parse_clamav(s: Section) -> ClamavConfig:
    addresses = []
    for i, text in enumerate(s.str_list("address", ("tcp://127.0.0.1:3310",))):
        try:
            addresses.append(parse_address(text))
        except ValueError as e:
            s.problem(f"address[{i}]", str(e))
    if not addresses:
        if not s.problems or all(not p.key.startswith(s.key("address")) for p in s.problems):
            s.problem("address", 'needs at least one clamd, e.g. "tcp://127.0.0.1:3310"')
        addresses = list(ClamavConfig.addresses)
    alert_to = s.str_list("alert_to", ())
    for i, addr in enumerate(alert_to):
        if "@" not in addr or addr.startswith("@") or addr.endswith("@"):
            s.problem(f"alert_to[{i}]", f'"{addr}" is not an e-mail address')
    cfg = ClamavConfig(
        addresses=tuple(addresses),
        timeout=s.number("timeout", 30.0, minimum=1, maximum=600),
        alert_to=alert_to,
        stream_max_length=s.size("stream_max_length", "0") if s.has("stream_max_length") else 0,
    )
    s.finish()
    return cfg


# --------------------------------------------------------------------------- pure decisions

def assess(reply: ScanReply, *, where: str = "", header_value: str = "") -> Report:
    """What a scan reply means. ``where`` names the infected part ("the attachment
    invoice.zip"), ``header_value`` is the X-Virus-Scanned value for clean mail."""
    where = where or "the message"
    if reply.outcome is Outcome.CLEAN:
        return Report(change=Change(add_headers=((HEADER, header_value or "ClamAV"),)))
    if reply.outcome is Outcome.INFECTED:
        return Report((Finding(NAME, "virus", Severity.HIGH,
                               f"virus {reply.signature} in {where}",
                               ascii_safe(f"Message rejected: {where} contains "
                                          f"{reply.signature}")),))
    if reply.outcome is Outcome.TOO_BIG:
        why = "the message is too big for the virus scanner"
        return Report((Finding(NAME, "unscannable.too-big", Severity.MEDIUM, why,
                               f"Message rejected: {why}"),))
    if reply.outcome is Outcome.LIMITS:
        why = (f"part of the message could not be fully virus-checked ({reply.signature}: "
               "archives too large or nested too deeply)")
        return Report((Finding(NAME, "unscannable.limits", Severity.MEDIUM, why,
                               f"Message rejected: {why}"),))
    return Report((Finding(NAME, "scan-failed", Severity.MEDIUM,
                           f"the virus scanner was unavailable: {reply.detail}",
                           "Virus scanner unavailable, try again later"),),
                  change=Change(add_headers=((HEADER, "failed"),)))


ALERT_OUTCOMES = (
    (Action.REFUSE, "refused the message; the sending server was told why"),
    (Action.HOLD, "held the message in quarantine; nobody received it"),
    (Action.TEMPFAIL, "turned the message away for now; nobody received it"),
)


def alert_text(ctx: MessageContext, msg: EmailMessage, *, signature: str, where: str) -> str:
    """The body of the alert for the clerk and the chairman: who, what, and what was done
    (``{outcome}`` is filled in once the policy has decided)."""
    subject = shown_field(msg, "subject") or "(no subject)"
    side = "received from outside" if ctx.side == "inbound" else "sent by the council"
    lines = [
        "The mail gateway found a virus in a message.",
        "",
        f"Direction:   {side}",
        f"Sender:      {ctx.envelope.mail_from or '(none)'}",
        f"Recipients:  {', '.join(ctx.envelope.rcpt_tos)}",
        f"Subject:     {subject}",
        f"Virus:       {signature}, in {where}",
        "What we did: {outcome}.",
        f"Message id:  {ctx.id}",
        "",
        "Nothing needs to be done unless the sender is someone the council knows: then tell",
        "them their computer may be infected. (Stanion policy, 'Virus Protection': detected",
        "viruses are reported to the Clerk/RFO and the Chairman.)",
    ]
    return "\n".join(lines) + "\n"


async def locate_infected_part(client: ClamdClient, message: EmailMessage, deadline: float
                               ) -> str:
    """Name the attachment that holds the virus ("the attachment invoice.zip"), by scanning the
    named parts one by one; "" when no single part can be named in time."""
    loop = asyncio.get_running_loop()
    checked = 0
    for part in message.walk():
        if part.is_multipart() or not part.get_filename():
            continue
        if checked >= MAX_PARTS_TO_LOCATE or loop.time() >= deadline:
            break
        checked += 1
        payload = decoded_payload(part)
        if payload is None:
            continue
        reply = await client.scan(payload, budget=max(0.1, deadline - loop.time()))
        if reply.outcome is Outcome.INFECTED:
            return f"the attachment {display_name(part.get_filename() or '')}"
    return ""


# --------------------------------------------------------------------------- the filter

class AntivirusFilter:
    name = NAME
    stage = Stage.CHECK
    reads_content = False  # it reads the bytes, not the parsed message

    def __init__(self, cfg: ClamavConfig, gateway: GatewayConfig,
                 client: ClamdClient | None = None):
        self.cfg = cfg
        self.client = client or ClamdClient(cfg.addresses, cfg.timeout)
        # A backstop for the pipeline; the scan's own deadline answers first, with 4.7.1.
        self.timeout: float | None = cfg.timeout * 2 + 5
        self.stream_max = cfg.stream_max_length or (
            math.ceil((gateway.max_message_size + HEADER_ROOM) / MIB) * MIB)

    async def check(self, ctx: MessageContext) -> Report:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.cfg.timeout
        if ctx.size > self.stream_max:
            reply = ScanReply(Outcome.TOO_BIG, address=str(self.cfg.addresses[0]))
        else:
            reply = await self.client.scan(ctx.content)
        where = header_value = ""
        if reply.outcome is Outcome.INFECTED:
            where = await locate_infected_part(self.client, await ctx.parsed(), deadline)
        elif reply.outcome is Outcome.CLEAN:
            version = await self.client.version(reply.address)
            header_value = version.header_value if version else "ClamAV"
            if version and version.test_signatures_only and reply.address not in _WARNED:
                _WARNED.add(reply.address)
                log.warning("clamd at %s has ONLY TEST SIGNATURES: real viruses are not "
                            "detected; install freshclam's database", reply.address)
        if reply.outcome is Outcome.ERROR:
            log.error("id=%s virus scan failed: %s", ctx.id, reply.detail)
        report = assess(reply, where=where, header_value=header_value)
        if reply.outcome is not Outcome.INFECTED or not self.cfg.alert_to:
            return report
        alert = Notice(f"Virus stopped: {reply.signature}",
                       alert_text(ctx, await ctx.parsed(), signature=reply.signature,
                                  where=where or "the message"),
                       ALERT_OUTCOMES, to=self.cfg.alert_to)
        return Report(report.findings, report.change, report.tag, (alert,))
