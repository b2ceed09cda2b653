"""Every message, both directions, is scanned by clamd before anyone can open it.

Policy: Stanion "Virus Protection" (all mail and attachments are virus-checked before they are
opened; the council must not distribute viruses; detected viruses are reported to the Clerk/RFO
and the Chairman) and Kirkham rules 2 and 14.

What the scan finds is decided by :func:`decide`, a pure function over the scan reply; clamd
itself is reached through :class:`gateway.adapters.clamd.ClamdClient`. The scanner failing is
never a pass: by default the sender is told to try again later (451 4.7.1).
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
from gateway.config import Config, Section, register_section, section
from gateway.context import MessageContext
from gateway.delivery.notices import make_notice
from gateway.filters import register
from gateway.rules.attachments import ascii_safe, display_name
from gateway.verdicts import Finding, Modify, Quarantine, Reject, TempFail, Verdict

__all__ = ["ClamavConfig", "AntivirusFilter", "parse_clamav", "decide", "Decision",
           "alert_text", "locate_infected_part"]

log = logging.getLogger(__name__)

NAME = "antivirus"
HEADER = "X-Virus-Scanned"
# Rescanning attachments one by one only serves to name the file in the reply; bounded.
MAX_PARTS_TO_LOCATE = 20
# clamd addresses already reported as having only test signatures (said once per process).
_WARNED: set[str] = set()


@dataclass(frozen=True)
class ClamavConfig:
    addresses: tuple[ClamdAddress, ...] = (ClamdAddress("tcp", host="127.0.0.1", port=3310),)
    timeout: float = 30.0
    on_error: str = "tempfail"  # "tempfail" | "accept"
    too_big: str = "reject"  # "reject" | "tempfail" | "quarantine"
    inbound_action: str = "reject"  # "reject" | "quarantine"
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
        on_error=s.choice("on_error", "tempfail", ("tempfail", "accept")),
        too_big=s.choice("too_big", "reject", ("reject", "tempfail", "quarantine")),
        inbound_action=s.choice("inbound_action", "reject", ("reject", "quarantine")),
        alert_to=alert_to,
        stream_max_length=s.size("stream_max_length", "0") if s.has("stream_max_length") else 0,
    )
    s.finish()
    return cfg


register_section("clamav")(parse_clamav)


# --------------------------------------------------------------------------- pure decisions

@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    alert: bool = False  # a virus was found: tell alert_to
    action: str = ""  # what the gateway did, in words, for the alert and the logs


def decide(reply: ScanReply, *, direction: str, cfg: ClamavConfig, where: str = "",
           header_value: str = "") -> Decision:
    """Map a scan reply to a verdict. ``where`` names the infected part ("the attachment
    invoice.zip"), ``header_value`` is the X-Virus-Scanned value for clean mail."""
    where = where or "the message"
    if reply.outcome is Outcome.CLEAN:
        return Decision(Modify(add_headers=((HEADER, header_value or "ClamAV"),)))

    if reply.outcome is Outcome.INFECTED:
        text = f"{where} contains {reply.signature}"
        finding = Finding(NAME, "virus", f"virus {reply.signature} in {where}")
        if direction == "inbound" and cfg.inbound_action == "quarantine":
            return Decision(Quarantine((f"virus: {text}",), (finding,)), True,
                            "held the message in quarantine; nobody received it")
        reject = Reject(ascii_safe(f"Message rejected: {text}"), 554, "5.7.1", (finding,))
        return Decision(reject, True, "refused the message; the sending server was told why")

    if reply.outcome in (Outcome.TOO_BIG, Outcome.LIMITS):
        if reply.outcome is Outcome.TOO_BIG:
            why = "the message is too big for the virus scanner"
            code, enhanced = (552, "5.3.4")
        else:
            why = (f"part of the message could not be fully virus-checked "
                   f"({reply.signature}: archives too large or nested too deeply)")
            code, enhanced = (554, "5.7.1")
        finding = Finding(NAME, "unscannable", why)
        if cfg.too_big == "tempfail":
            return Decision(TempFail(f"Message not accepted for now: {why}; try again later",
                                     451, "4.7.1" if reply.outcome is Outcome.LIMITS else "4.3.4",
                                     (finding,)))
        if cfg.too_big == "quarantine":
            return Decision(Quarantine((why,), (finding,)))
        return Decision(Reject(f"Message rejected: {why}", code, enhanced, (finding,)))

    finding = Finding(NAME, "scan-failed", f"virus scanner unavailable: {reply.detail}")
    if cfg.on_error == "accept":
        return Decision(Modify(add_headers=((HEADER, "failed"),), findings=(finding,)))
    return Decision(TempFail("Virus scanner unavailable, try again later", 451, "4.7.1",
                             (finding,)))


def alert_text(ctx: MessageContext, *, signature: str, where: str, action: str) -> str:
    """The body of the alert for the clerk and the chairman: who, what, and what was done."""
    try:
        subject = " ".join(str(ctx.message.get("Subject", "")).split()) or "(no subject)"
    except Exception:  # a message too broken to parse still gets its alert
        subject = "(unreadable)"
    direction = "received from outside" if ctx.direction == "inbound" else "sent by the council"
    lines = [
        "The mail gateway found a virus in a message.",
        "",
        f"Direction:   {direction}",
        f"Sender:      {ctx.envelope.mail_from or '(none)'}",
        f"Recipients:  {', '.join(ctx.envelope.rcpt_tos)}",
        f"Subject:     {subject}",
        f"Virus:       {signature}, in {where}",
        f"What we did: {action}.",
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
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        reply = await client.scan(payload, budget=max(0.1, deadline - loop.time()))
        if reply.outcome is Outcome.INFECTED:
            return f"the attachment {display_name(part.get_filename() or '')}"
    return ""


# --------------------------------------------------------------------------- the filter

class AntivirusFilter:
    name = NAME

    def __init__(self, cfg: ClamavConfig, config: Config, client: ClamdClient | None = None):
        self.cfg = cfg
        self.config = config
        self.client = client or ClamdClient(cfg.addresses, cfg.timeout)
        self.on_error = cfg.on_error
        # A backstop for the pipeline; the scan's own deadline answers first, with 4.7.1.
        self.timeout = cfg.timeout * 2 + 5
        self.stream_max = cfg.stream_max_length or (
            math.ceil((config.gateway.max_message_size + HEADER_ROOM) / MIB) * MIB)

    async def check(self, ctx: MessageContext) -> Verdict:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.cfg.timeout
        if len(ctx.data) > self.stream_max:
            reply = ScanReply(Outcome.TOO_BIG, address=str(self.cfg.addresses[0]))
        else:
            reply = await self.client.scan(ctx.data)
        where = header_value = ""
        if reply.outcome is Outcome.INFECTED:
            where = await locate_infected_part(self.client, ctx.message, deadline)
        elif reply.outcome is Outcome.CLEAN:
            version = await self.client.version(reply.address)
            header_value = version.header_value if version else "ClamAV"
            if version and version.test_signatures_only and reply.address not in _WARNED:
                _WARNED.add(reply.address)
                log.warning("clamd at %s has ONLY TEST SIGNATURES: real viruses are not "
                            "detected; install freshclam's database", reply.address)
        decision = decide(reply, direction=ctx.direction, cfg=self.cfg, where=where,
                          header_value=header_value)
        if reply.outcome is Outcome.ERROR:
            log.error("id=%s virus scan failed: %s", ctx.id, reply.detail)
        if decision.alert and self.cfg.alert_to:
            body = alert_text(ctx, signature=reply.signature, where=where or "the message",
                              action=decision.action)
            ctx.notices.append(make_notice(self.config, self.cfg.alert_to,
                                           f"Virus stopped: {reply.signature}", body))
        return decision.verdict


@register(NAME, order=20, summary="scans every message with clamd; stops viruses",
          sides=("inbound", "outbound"))
def build(config: Config) -> AntivirusFilter:
    return AntivirusFilter(parse_clamav(section(config, "clamav")), config)

