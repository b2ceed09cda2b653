"""Shared set-up for the junk, quarantine and digest tests: config, DNS records, SMTP talk."""

from __future__ import annotations

import smtplib
from pathlib import Path
from typing import Any

from tests.conftest import _merge
from tests.helpers import in_thread, smtp_session

COUNCIL = "stanion-pc.gov.uk"
CLERK = f"clerk@{COUNCIL}"


def overrides(tmp_path: Path, dns_address: str, sink_url: str | None = None,
              **extra: Any) -> dict[str, Any]:
    """Inbound runs trace+junk; DNS goes only to the loopback test server."""
    inbound: dict[str, Any] = {"filters": ["trace", "junk"]}
    if sink_url:
        inbound["deliver_to"] = sink_url
    base = {
        "inbound": inbound,
        "dns": {"nameservers": [dns_address], "timeout": 0.5},
        "junk": {"auth_deadline": 3.0},
        "senders": {
            "known": ["Jane Smith <jane@nalc.example>"],
            "file": str(tmp_path / "known-senders.txt"),
            "learned_file": str(tmp_path / "learned-senders.txt"),
            "blocked_file": str(tmp_path / "blocked-senders.txt"),
        },
        "quarantine": {"digest_to": [CLERK]},
    }
    return _merge(base, extra)


def publish_known_domain(dns: Any) -> None:
    """nalc.example: the known sender's domain, sending from 127.0.0.1 with SPF and DMARC reject."""
    dns.add("nalc.example", "TXT", "v=spf1 ip4:127.0.0.1 -all")
    dns.add("_dmarc.nalc.example", "TXT", "v=DMARC1; p=reject")


async def talk(port: int, mail_from: str, rcpts: list[str], data: bytes) -> tuple[int, str]:
    """One transaction over a real socket; returns the reply to the end of DATA."""
    def steps(c: smtplib.SMTP) -> tuple[int, str]:
        c.ehlo("mx.sender.example")
        code, text = c.mail(mail_from)
        assert code == 250, text
        for r in rcpts:
            code, text = c.rcpt(r)
            assert code == 250, text
        code, text = c.data(data)
        return code, text.decode()
    return await in_thread(smtp_session, port, steps)
