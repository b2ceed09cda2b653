"""Envelope rules: who may send, to whom, as whom. Pure functions of the address and the
client's standing; each returns the refusal line, or None when the address is fine.

Addresses are taken exactly as the client wrote them (quotes and all) and passed on to the next
hop the same way, so what was checked is what the mailbox server sees. On the MX side a local
part that a mail server could read as a route to somewhere else (``user%evil.example``,
``evil.example!user``, a quoted ``"user@evil.example"``) is refused: through a mailbox server
that still honours them, they would make the gateway an open relay.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable, Sequence
from email.utils import getaddresses
from typing import Any

from email_validator import EmailNotValidError, validate_email

from gateway.config import GatewayConfig
from gateway.config.core import canonical_domain

__all__ = ["MAX_RECIPIENTS", "address_problem", "from_header_refusal", "in_networks",
           "local_part_refusal", "recipient_refusal", "sender_refusal", "split_address"]

MAX_RECIPIENTS = 100
LOGIN_FIRST = "530 5.7.0 Please log in first (authentication required to send mail)"


def in_networks(ip: str, networks: Iterable[Any]) -> bool:
    try:
        addr = ipaddress.ip_address(ip.split("%")[0])
    except ValueError:
        return False
    return any(addr in net for net in networks)


def split_address(address: str) -> tuple[str, str]:
    """(local part as written, domain): the last "@" outside quotes divides them."""
    local, _, domain = address.rpartition("@")
    return local, domain


def _unquoted(local: str) -> str | None:
    """The content of a quoted local part (backslash escapes undone), None when not quoted."""
    if len(local) < 2 or not (local.startswith('"') and local.endswith('"')):
        return None
    return re.sub(r"\\(.)", r"\1", local[1:-1])


_ROUTING = frozenset("@%!<> \t")


def local_part_refusal(address: str, allowed: Sequence[re.Pattern[str]] = ()) -> str | None:
    """The MX side's refusal of a local part that routes elsewhere, unless a pattern the IT
    volunteer set allows it (``[inbound] allowed_local_parts``)."""
    if address.startswith("@"):
        return "550 5.1.3 Source routes are not accepted: give the recipient's address only"
    local, _ = split_address(address)
    if any(p.fullmatch(local) for p in allowed):
        return None
    content = _unquoted(local)
    if content is not None:
        bad = sorted({c for c in content if c in _ROUTING or c.isspace()})
        if bad:
            shown = " ".join("space" if c.isspace() else c for c in bad)
            return (f"550 5.1.3 This server does not take quoted addresses containing {shown}: "
                    "they can route mail on to another server")
        return None
    if "%" in local or "!" in local:
        return ("550 5.1.3 Addresses with % or ! route mail on to another server; this server "
                "only takes mail for the council's own mailboxes")
    return None


@functools.lru_cache(maxsize=4096)
def address_problem(address: str, smtputf8: bool) -> str | None:
    """email-validator's reason an address is not well formed, or None. (Remembered: the same
    few addresses come again and again, and each check took a fiftieth of a message's time.)"""
    try:
        validate_email(address, check_deliverability=False, allow_smtputf8=smtputf8,
                       allow_quoted_local=True)
    except EmailNotValidError as e:
        return str(e)
    return None


def _comparable(address: str) -> str:
    local, _, domain = address.rpartition("@")
    return f"{local.lower()}@{canonical_domain(domain)}"


def _may_send_as(address: str, own: Sequence[str] | None, gateway: GatewayConfig) -> str | None:
    """None when ``address`` may be used by this client: a logged-in councillor only as one of
    the login's own addresses (``own``), a trusted client as any council address."""
    if own is not None:
        if _comparable(address) in {_comparable(a) for a in own}:
            return None
        return (f"553 5.7.1 Your login may not send as {address}; it sends as "
                f"{', '.join(own) or 'no address yet (ask the IT volunteer)'}")
    if not gateway.is_council_address(address):
        domains = ", ".join(gateway.council_domains)
        return f"553 5.7.1 You can only send from an address of the council ({domains})"
    return None


def sender_refusal(address: str, *, side: str, may_submit: bool, smtputf8: bool,
                   gateway: GatewayConfig, own: Sequence[str] | None = None) -> str | None:
    """MAIL FROM: the submission side takes mail only from logged-in or trusted clients, and
    only from addresses they may use (``own`` are a logged-in councillor's); ``<>`` only from
    outside."""
    if side == "outbound" and not may_submit:
        return LOGIN_FIRST
    if address == "<>":
        if side == "outbound":
            return "553 5.7.1 The empty sender <> cannot be used to send mail from here"
        return None
    problem = address_problem(address, smtputf8)
    if problem:
        return f"501 5.1.7 Bad sender address: {problem}"
    if side == "outbound":
        return _may_send_as(address, own, gateway)
    return None


def from_header_refusal(values: Sequence[str], *, own: Sequence[str] | None,
                        gateway: GatewayConfig) -> str | None:
    """The ``From:`` addresses of submitted mail are held to the same rule as MAIL FROM."""
    addresses = [a for _, a in getaddresses(list(values))]
    if values and not any(addresses):
        return "553 5.7.1 The From: line of the message has no address the gateway can read"
    for address in addresses:
        if not address:
            continue
        refusal = _may_send_as(address, own, gateway)
        if refusal:
            return refusal.replace("send as", "send a message From:", 1) \
                if own is not None else refusal
    return None


def recipient_refusal(address: str, *, side: str, may_submit: bool, smtputf8: bool,
                      count: int, gateway: GatewayConfig) -> str | None:
    """RCPT TO: the MX side takes mail only for the council (no relaying)."""
    if address.startswith("@"):
        return "550 5.1.3 Source routes are not accepted: give the recipient's address only"
    problem = address_problem(address, smtputf8)
    if problem:
        return f"553 5.1.3 Bad recipient address: {problem}"
    if side == "inbound" and not gateway.is_council_address(address):
        domains = ", ".join(gateway.council_domains)
        return f"550 5.7.1 Relay access denied: this server only takes mail for {domains}"
    if side == "outbound" and not may_submit:
        return LOGIN_FIRST
    if count >= MAX_RECIPIENTS:
        return f"452 4.5.3 Too many recipients; send to at most {MAX_RECIPIENTS} at a time"
    return None
