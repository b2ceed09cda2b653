"""What the hostile-sender benchmark sends and how: the addresses, the SMTP client, the messages
(small, realistic, 50,000 parts, a large HTML part, deep nesting), the warm-up and the reading
of the gateway's audit records. See bench/hostile.py."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

from bench._rig import (
    CLERK,
    DOMAIN,
    RESIDENT,
    GatewayProcess,
    median,
    read_reply,
    wire,
)

COUNCILLOR = f"cllr.smith@{DOMAIN}"
PROBE_ADDR = "127.0.0.1"      # the councillor (and the default client address)
# The small messages of the latency part come from these in turn, as an MX's mail comes from
# many servers: the per-address cap is for floods, not for the measurement.
PROBE_ADDRS = tuple(f"127.0.1.{i}" for i in range(1, 9))
FLOODER_ADDR = "127.0.0.2"    # the connection flood
OTHER_ADDR = "127.0.0.3"      # hostile senders, and the MX sender during the flood
PROBE_INTERVAL = 0.050
PROBE_IN_FLIGHT = 40          # 5 an address, well inside the caps (20 an address, 100 a side)
HOSTILE_TIMEOUT = 300.0       # longest a hostile message is waited for


# ---------------------------------------------------------------------------- SMTP client

@dataclass
class Sent:
    code: int          # the final reply's code (0: no reply: a connection error or timeout)
    reply: str         # the final reply (or what went wrong)
    seconds: float     # connect to the end-of-DATA reply (or to the failure)
    stage: str         # where it ended: "greeting", "mail", "rcpt", "data" or "end"
    # seconds from the start until each step was answered: "wait" (a free probe slot),
    # "connect", "greeting", "ehlo", "mail", "rcpt", "data" (354), "end" (end-of-DATA reply)
    marks: dict[str, float] = field(default_factory=dict)


async def send(port: int, mail_from: str, rcpts: Sequence[str], data: bytes, *,
               local: str = PROBE_ADDR, deadline: float = 120.0,
               started: float | None = None) -> Sent:
    """One transaction on a new connection; ``data`` is already :func:`wire`-ready. Timed from
    ``started`` (a ``perf_counter`` value; default: now) to the end-of-DATA reply."""
    t0 = time.perf_counter() if started is None else started
    marks = {"wait": time.perf_counter() - t0}
    stage = "connect"
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(deadline):
            reader, writer = await asyncio.open_connection("127.0.0.1", port,
                                                           local_addr=(local, 0))
            marks["connect"] = time.perf_counter() - t0
            stage = "greeting"
            code, text = await read_reply(reader)
            marks["greeting"] = time.perf_counter() - t0
            if code != 220:
                return Sent(code, text, time.perf_counter() - t0, stage, marks)
            for stage, command, want in (
                    ("ehlo", b"EHLO bench.example.org\r\n", 250),
                    ("mail", f"MAIL FROM:<{mail_from}>\r\n".encode(), 250),
                    *(("rcpt", f"RCPT TO:<{r}>\r\n".encode(), 250) for r in rcpts),
                    ("data", b"DATA\r\n", 354)):
                writer.write(command)
                code, text = await read_reply(reader)
                marks[stage] = time.perf_counter() - t0
                if code != want:
                    return Sent(code, text, time.perf_counter() - t0, stage, marks)
            stage = "end"
            writer.write(data)
            writer.write(b".\r\n")
            await writer.drain()
            code, text = await read_reply(reader)
            seconds = marks["end"] = time.perf_counter() - t0
            writer.write(b"QUIT\r\n")
            return Sent(code, text, seconds, stage, marks)
    except TimeoutError:
        return Sent(0, f"no reply within {deadline:.0f} s", time.perf_counter() - t0, stage)
    except (OSError, ConnectionError) as e:
        return Sent(0, f"{type(e).__name__}: {e}", time.perf_counter() - t0, stage)
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 2)


# ---------------------------------------------------------------------------- messages

def _headers(subject: str, sender: str = RESIDENT, to: str = CLERK) -> bytes:
    return (f"From: Pat Resident <{sender}>\r\nTo: {to}\r\nSubject: {subject}\r\n"
            f"Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n"
            f"Message-ID: {make_msgid(domain='example.org')}\r\nMIME-Version: 1.0\r\n").encode()


PROSE = ("Dear Clerk, please find attached the report on the footpath survey and the photos of "
         "the bridge by the allotments, as discussed at the last meeting of the council.\n")


def small_message(i: int = 0, sender: str = RESIDENT, to: str = CLERK) -> bytes:
    """The probe: a short plain-text note, about 1 KB."""
    return wire(_headers(f"Footpath by the church, note {i}", sender, to)
                + b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
                + (PROSE * 4).replace("\n", "\r\n").encode())


def _pdf_head() -> bytes:
    try:
        from tests import samples
        return samples.pdf()
    except Exception:  # pypdf or the tests package missing: a minimal PDF header will do
        return b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n"


def realistic_message(size: int, *, subject: str = "Footpath survey and photos") -> bytes:
    """About ``size`` bytes on the wire: a text body (1 % of it, at least 4 KB) and two base64
    attachments, a PDF (60 %) and a JPEG photo (the rest), padded with fresh random bytes."""
    body = PROSE * max(1, int(max(4096, size // 100) // len(PROSE)))
    # base64 with 76-character lines and CRLF: 78 bytes on the wire for every 57 of payload
    payload = max(4096, int((size - len(body) - 2048) * 57 / 78))
    pdf = _pdf_head()
    pdf += os.urandom(max(0, int(payload * 0.6) - len(pdf)))
    jpeg = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    jpeg += os.urandom(max(0, payload - len(pdf) - len(jpeg)))
    msg = EmailMessage()
    msg["From"] = f"Pat Resident <{RESIDENT}>"
    msg["To"] = CLERK
    msg["Subject"] = subject
    msg["Date"] = "Mon, 23 Nov 2026 10:00:00 +0000"
    msg["Message-ID"] = make_msgid(domain="example.org")
    msg.set_content(body)
    msg.add_attachment(pdf, maintype="application", subtype="pdf", filename="survey.pdf")
    msg.add_attachment(jpeg, maintype="image", subtype="jpeg", filename="bridge.jpg")
    return wire(msg.as_bytes(policy=msg.policy.clone(linesep="\r\n")))


def many_parts_message(parts: int = 50_000, total: int = 2_000_000) -> bytes:
    """``parts`` tiny text parts in one multipart/mixed, about ``total`` bytes."""
    boundary = b"=_many"
    head = (_headers("Many parts") + b'Content-Type: multipart/mixed; boundary="'
            + boundary + b'"\r\n\r\n')
    skeleton = b"--" + boundary + b"\r\nContent-Type: text/plain\r\n\r\n\r\n"
    fill = max(1, (total - len(head)) // parts - len(skeleton))
    text = (b"spam " * (fill // 5 + 1))[:fill]
    part = b"--" + boundary + b"\r\nContent-Type: text/plain\r\n\r\n" + text + b"\r\n"
    return wire(head + part * parts + b"--" + boundary + b"--\r\n")


def big_html_message(total: int = 3_800_000) -> bytes:
    """One text/html part of about ``total`` bytes: advertising markup, dense with tags and
    links, as a bulk sender's newsletter is, only much longer."""
    line = ('<div class="offer"><p><b>Limited time offer</b> on <i>garden</i> '
            '<a href="https://offers.example.net/p/{n}">offer {n}</a> '
            '<span style="color:#c00">act now</span><br></p></div>\r\n')
    head = (_headers("Offers you will not want to miss")
            + b"Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
            + b"\r\n<html><body>\r\n")
    chunks, size, n = [head], len(head), 0
    while size < total:
        piece = line.format(n=n).encode()
        chunks.append(piece)
        size += len(piece)
        n += 1
    chunks.append(b"</body></html>\r\n")
    return wire(b"".join(chunks))


def nested_message(depth: int = 1_000) -> bytes:
    """A multipart inside a multipart ... ``depth`` deep, with one text part at the bottom."""
    out = [_headers("Nested")]
    for level in range(depth):
        out.append(f'Content-Type: multipart/mixed; boundary="b{level}"\r\n\r\n'
                   f"--b{level}\r\n".encode())
    out.append(b"Content-Type: text/plain\r\n\r\nhello from the bottom\r\n")
    for level in reversed(range(depth)):
        out.append(f"--b{level}--\r\n".encode())
    return wire(b"".join(out))


def dashes_message(total: int = 4_000_000) -> bytes:
    """A text part of about ``total`` bytes of lines that begin with "--" (as a boundary
    does) but are none: each must be looked at, and none may be looked at twice."""
    head = (_headers("Dashes") + b'Content-Type: multipart/mixed; boundary="=_d"\r\n\r\n'
            + b"--=_d\r\nContent-Type: text/plain\r\n\r\n")
    return wire(head + b"--\r\n" * (total // 4) + b"--=_d--\r\n")


def folded_message(lines: int = 200_000) -> bytes:
    """A short note whose Subject is folded over ``lines`` continuation lines (about 600 KB):
    every check that reads the Subject meets it."""
    head = _headers("Folded" + "\r\n x" * lines)
    return wire(head + b"Content-Type: text/plain\r\n\r\n" + PROSE.encode())


def comments_message(size: int = 8_000) -> bytes:
    """A From of ``size`` bytes of comments, ``(x)(x)...``, just under the limit for a field read
    as addresses: the email package's slowest shape of header field, read by several checks."""
    comments = b"\r\n ".join([b"(x)" * 300] * (size // 900))  # lines of 900 characters
    head = _headers("Comments").replace(b"From: ", b"From: " + comments + b"\r\n ")
    return wire(head + b"Content-Type: text/plain\r\n\r\n" + PROSE.encode())


# kind: (what it is, its Subject, how it is made)
HOSTILE: dict[str, tuple[str, str, Callable[[], bytes]]] = {
    "parts": ("2 MB, 50,000 MIME parts", "Many parts", many_parts_message),
    "html": ("3.8 MB HTML part", "Offers you will not want to miss", big_html_message),
    "nested": ("multipart nested 1,000 deep", "Nested", nested_message),
    "dashes": ("4 MB of lines starting \"--\"", "Dashes", dashes_message),
    "folded": ("a Subject folded over 200,000 lines", "Folded", folded_message),
    "comments": ("a From of 8 KB of comments", "Comments", comments_message),
}


async def warm_up(gw: GatewayProcess) -> None:
    """One small realistic message and one probe through the whole chain, so that lazily
    imported libraries and first-use caches are in the baseline, not in the figure."""
    for data in (realistic_message(64 * 1024, subject="Warm-up"), small_message()):
        r = await send(gw.in_port, RESIDENT, [CLERK], data, local=OTHER_ADDR)
        if r.code != 250:
            raise RuntimeError(f"warm-up message answered {r.reply!r}\n"
                               + "\n".join(gw.errors()[-10:]))


# ---------------------------------------------------------------------------- audit records

def verdicts(records: Sequence[dict[str, Any]]) -> str:
    """What the gateway did with the messages, from its audit records: verdict (finding codes
    that decided)."""
    out: Counter[str] = Counter()
    for r in records:
        codes = sorted({f.get("code", "?") for f in r.get("findings", ())
                        if isinstance(f, dict) and f.get("code") in DECISIVE})
        out[r.get("verdict", "?") + (f" ({', '.join(codes)})" if codes else "")] += 1
    return ", ".join(f"{n} {text}" for text, n in out.most_common()) or "no audit record"


# The finding codes worth naming beside a verdict (the rest are junk's signals and the like).
DECISIVE = {"too-complex", "malformed", "check-failed", "virus", "unscannable.too-big",
            "unscannable.limits", "scan-failed", "junk", "confidential"}


def step_times(records: Sequence[dict[str, Any]]) -> str:
    """Median milliseconds of each filter, and of the whole message, from the audit records."""
    per: dict[str, list[float]] = {}
    for r in records:
        for f in r.get("filters", ()):
            outcome = f.get("outcome")
            name = str(f.get("name")) + ("" if outcome == "ok" else f" ({outcome})")
            per.setdefault(name, []).append(float(f.get("ms", 0)))
    whole = [float(r.get("ms", 0)) for r in records]
    parts = [f"{name} {median(v):.0f}" for name, v in per.items()]
    return (", ".join(parts) + f"; whole message {median(whole):.0f} ms") if records else "–"


def short_reply(reply: str) -> str:
    reply = re.sub(r"\b[0-9a-f]{12}\b", "ID", reply)  # message ids
    return reply if len(reply) <= 90 else reply[:87] + "..."


def reply_counts(replies: Counter[str]) -> str:
    return "; ".join(f"{n} × `{text}`" if len(replies) > 1 or n > 1 else f"`{text}`"
                     for text, n in replies.most_common()).replace("|", "\\|")
