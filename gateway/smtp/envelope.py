"""Envelope rules: who may send, to whom, as whom. Pure functions of the address and the
client's standing; each returns the refusal line, or None when the address is fine."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from email_validator import EmailNotValidError, validate_email

from gateway.config import GatewayConfig

__all__ = ["MAX_RECIPIENTS", "address_problem", "in_networks", "recipient_refusal",
           "sender_refusal"]

MAX_RECIPIENTS = 100
LOGIN_FIRST = "530 5.7.0 Please log in first (authentication required to send mail)"


def in_networks(ip: str, networks: Iterable[Any]) -> bool:
    try:
        addr = ipaddress.ip_address(ip.split("%")[0])
    except ValueError:
        return False
    return any(addr in net for net in networks)


def address_problem(address: str, smtputf8: bool) -> str | None:
    """email-validator's reason an address is not well formed, or None."""
    try:
        validate_email(address, check_deliverability=False, allow_smtputf8=smtputf8,
                       allow_quoted_local=True)
    except EmailNotValidError as e:
        return str(e)
    return None


def sender_refusal(address: str, *, side: str, may_submit: bool, smtputf8: bool,
                   gateway: GatewayConfig) -> str | None:
    """MAIL FROM: the submission side takes mail only from logged-in or trusted clients, and
    only from council addresses; ``<>`` only from outside."""
    if side == "outbound" and not may_submit:
        return LOGIN_FIRST
    if address == "<>":
        if side == "outbound":
            return "553 5.7.1 The empty sender <> cannot be used to send mail from here"
        return None
    problem = address_problem(address, smtputf8)
    if problem:
        return f"501 5.1.7 Bad sender address: {problem}"
    if side == "outbound" and not gateway.is_council_address(address):
        domains = ", ".join(gateway.council_domains)
        return f"553 5.7.1 You can only send from an address of the council ({domains})"
    return None


def recipient_refusal(address: str, *, side: str, may_submit: bool, smtputf8: bool,
                      count: int, gateway: GatewayConfig) -> str | None:
    """RCPT TO: the MX side takes mail only for the council (no relaying)."""
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
