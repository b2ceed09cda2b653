"""Small helpers for tests: build messages, talk SMTP with smtplib (in a thread)."""

from __future__ import annotations

import asyncio
import smtplib
import sys
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def make_message(sender: str = "resident@example.org", to: str = "clerk@stanion-pc.gov.uk",
                 subject: str = "Pothole on Main Street", body: str = "Please fix it.\n") -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(domain="example.org")
    msg["Date"] = "Mon, 23 Nov 2026 10:00:00 +0000"
    msg.set_content(body)
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


async def in_thread(fn: Callable[..., T], *args: Any) -> T:
    return await asyncio.to_thread(fn, *args)


def smtp_session(port: int, steps: Callable[[smtplib.SMTP], T]) -> T:
    """Open a real smtplib connection to 127.0.0.1:port, run ``steps``, always QUIT."""
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as client:
        return steps(client)


def send(port: int, mail_from: str, rcpt_tos: list[str], data: bytes) -> dict[str, Any]:
    """sendmail() through smtplib; returns the refused-recipients dict (raises on failure)."""
    def steps(c: smtplib.SMTP) -> dict[str, Any]:
        c.ehlo("client.example.org")
        return c.sendmail(mail_from, rcpt_tos, data)
    return smtp_session(port, steps)


ROOT = Path(__file__).resolve().parents[1]


async def cli(config_path: Path, *args: str) -> tuple[int, str, str]:
    """``council-gateway ARGS --config PATH`` in its own process (``python -m gateway``), as
    the IT volunteer or the clerk runs it; the event loop keeps serving the test's peers
    meanwhile. Returns the exit status, stdout and stderr."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", *args, "--config", str(config_path), cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    async with asyncio.timeout(60):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()
