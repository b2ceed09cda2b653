"""Handing mail to the next hop: a Maildir folder, or an SMTP server driven in step with the client.

For an SMTP next hop the gateway opens the upstream transaction while the client's is open (MAIL
and each RCPT are passed on as they come, so per-recipient refusals reach the client as such) and
answers the client's end-of-data only after the upstream answered its DATA. Nothing is ever
accepted that the next hop has not accepted.
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiosmtplib

from gateway.config import Config, ListenerConfig, NextHop
from gateway.content import Content
from gateway.delivery.datawriter import send_data
from gateway.delivery.maildir import write_message

__all__ = ["Capabilities", "DeliveryResult", "Upstream", "capabilities", "deliver",
           "deliver_maildir", "reply_with_enhanced", "tls_context"]

log = logging.getLogger(__name__)

UNREACHABLE = (451, "4.4.1", "The next mail server could not be reached; please try again later")
NO_SMTPUTF8 = (553, "5.6.7 The council's mail server cannot take international (non-ASCII) "
                    "addresses; please use a plain one")


@dataclass(frozen=True)
class DeliveryResult:
    ok: bool
    code: int
    text: str  # with its enhanced status code, e.g. "2.0.0 Delivered"
    refused: dict[str, tuple[int, str]] = field(default_factory=dict)

    @property
    def reply(self) -> str:
        return f"{self.code} {self.text}"


def reply_with_enhanced(code: int, text: str) -> str:
    """Upstream text as we pass it on: one line, always starting with an enhanced status code."""
    text = " ".join(text.split())
    first = str(code)[0]
    if not re.match(rf"^{first}\.\d{{1,3}}\.\d{{1,3}}( |$)", text):
        text = f"{first}.0.0 {text}" if text else f"{first}.0.0 Next mail server said {code}"
    return text


def _password(listener: ListenerConfig) -> str:
    if listener.deliver_password_file is None:
        return ""
    return Path(listener.deliver_password_file).read_text(encoding="utf-8").strip()


def tls_context(listener: ListenerConfig) -> ssl.SSLContext:
    """How the gateway checks a next hop's certificate: the system's CAs or
    ``deliver_ca_file``, unless ``deliver_tls_verify = false``."""
    ctx = ssl.create_default_context(
        cafile=str(listener.deliver_ca_file) if listener.deliver_ca_file else None
    )
    if not listener.deliver_tls_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


@dataclass(frozen=True)
class Capabilities:
    """What the next hop said it offers in its EHLO answer (a Maildir offers none)."""

    size: int = 0  # 0: no limit given
    dsn: bool = False
    smtputf8: bool = False
    reachable: bool = True


CAPABILITY_SECONDS = 300.0  # how long what a next hop offers is taken as still true
_capabilities: dict[tuple[str, int, str], tuple[float, Capabilities]] = {}


async def capabilities(config: Config, listener: ListenerConfig) -> Capabilities:
    """What the side's SMTP next hop offers, asked at most every few minutes (connect, EHLO,
    QUIT); an unreachable one is taken as offering nothing."""
    hop = listener.deliver_to
    if hop.kind != "smtp":
        return Capabilities()
    key = (hop.host, hop.port, hop.tls)
    now = asyncio.get_running_loop().time()
    cached = _capabilities.get(key)
    if cached and now - cached[0] < CAPABILITY_SECONDS:
        return cached[1]
    up = Upstream(config, listener)
    try:
        async with asyncio.timeout(min(listener.deliver_timeout, 10)):
            await up.client.connect()
            if up.client.is_ehlo_or_helo_needed:
                await up.client.ehlo()
        ext = up.client.esmtp_extensions
        size = ext.get("size", "").strip()
        found = Capabilities(int(size) if size.isdigit() else 0, "dsn" in ext,
                             "smtputf8" in ext)
    except Exception as e:
        log.warning("next hop %s did not say what it offers: %s", hop, e)
        found = Capabilities(reachable=False)
    finally:
        await up.close()
    _capabilities[key] = (now, found)
    return found


class Upstream:
    """One SMTP transaction with the next hop, opened at the first RCPT and closed after DATA."""

    def __init__(self, config: Config, listener: ListenerConfig):
        hop = listener.deliver_to
        assert hop.kind == "smtp"
        self.hop = hop
        self.listener = listener
        self.client = aiosmtplib.SMTP(
            hostname=hop.host,
            port=hop.port,
            local_hostname=config.gateway.hostname,
            timeout=listener.deliver_timeout,
            use_tls=hop.tls == "implicit",
            start_tls=True if hop.tls == "starttls" else False,
            tls_context=tls_context(listener) if hop.tls != "none" else None,
        )
        self.opened = False
        self.encoding = "ascii"

    async def open(self, mail_from: str, *, smtputf8: bool, eight_bit: bool = True,
                   extra: Sequence[str] = (), again: bool = False) -> DeliveryResult:
        """Connect, log in if configured, and send MAIL FROM; with ``again``, only MAIL FROM,
        on the connection of a transaction that ended with the next hop's 250. On any failure
        the connection is closed before this returns (or raises, when cancelled)."""
        self.opened = False
        self.encoding = "ascii"
        try:
            if not again:
                await self.client.connect()
                if self.client.is_ehlo_or_helo_needed:  # its extensions are needed below
                    await self.client.ehlo()
                if self.listener.deliver_user:
                    await self.client.login(self.listener.deliver_user,
                                            _password(self.listener))
            options = []
            if smtputf8:
                if not self.client.supports_extension("smtputf8"):
                    await self.close()
                    return DeliveryResult(False, *NO_SMTPUTF8)
                options.append("SMTPUTF8")
                self.encoding = "utf-8"
            if eight_bit and self.client.supports_extension("8bitmime"):
                options.append("BODY=8BITMIME")
            if self.client.supports_extension("dsn"):
                options.extend(extra)  # RET= and ENVID=, as the client gave them
            await self.client.mail(mail_from, options=options, encoding=self.encoding)
        except aiosmtplib.SMTPResponseException as e:
            await self.close()
            return DeliveryResult(False, e.code, reply_with_enhanced(e.code, e.message))
        except BaseException as e:
            await self.close()
            if not isinstance(e, Exception):
                raise  # cancelled: the connection is closed, the cancellation goes on
            log.log(logging.INFO if again else logging.WARNING,
                    "next hop %s %s: %s", self.hop,
                    "kept connection no longer usable" if again else "unreachable", e)
            return DeliveryResult(False, UNREACHABLE[0], f"{UNREACHABLE[1]} {UNREACHABLE[2]}")
        self.opened = True
        return DeliveryResult(True, 250, "2.1.0 Sender OK")

    async def rcpt(self, address: str, extra: Sequence[str] = ()) -> DeliveryResult:
        """Pass one recipient on (with NOTIFY= and ORCPT= when the next hop takes DSN)."""
        options = list(extra) if self.client.supports_extension("dsn") else []
        try:
            resp = await self.client.rcpt(address, options=options, encoding=self.encoding)
        except aiosmtplib.SMTPResponseException as e:
            return DeliveryResult(False, e.code, reply_with_enhanced(e.code, e.message))
        except BaseException as e:
            await self.close()
            if not isinstance(e, Exception):
                raise
            log.warning("next hop %s failed during RCPT: %s", self.hop, e)
            return DeliveryResult(False, UNREACHABLE[0], f"{UNREACHABLE[1]} {UNREACHABLE[2]}")
        return DeliveryResult(True, resp.code, reply_with_enhanced(resp.code, resp.message))

    async def data(self, data: bytes | Content, *, keep: bool = False) -> DeliveryResult:
        """Send the message; the next hop has ``deliver_data_timeout`` to answer (RFC 5321
        4.5.3.2.6 gives it ten minutes), so a slow but working server is not asked twice.
        With ``keep``, a connection whose transaction the next hop took (250) stays open for
        another; otherwise, and on any other answer, it is closed."""
        try:
            resp = await send_data(self.client, Content.of(data),
                                   self.listener.deliver_data_timeout)
        except aiosmtplib.SMTPResponseException as e:
            result = DeliveryResult(False, e.code, reply_with_enhanced(e.code, e.message))
        except BaseException as e:
            await self.close()
            if not isinstance(e, Exception):
                raise
            log.warning("next hop %s failed during DATA: %s", self.hop, e)
            result = DeliveryResult(False, UNREACHABLE[0], f"{UNREACHABLE[1]} {UNREACHABLE[2]}")
        else:
            result = DeliveryResult(True, resp.code, reply_with_enhanced(resp.code, resp.message))
            if keep and self.client.is_connected:
                self.opened = False
                return result
        await self.close()
        return result

    async def close(self) -> None:
        """QUIT politely when possible; never raises."""
        try:
            if self.client.is_connected:
                try:
                    async with asyncio.timeout(5):
                        await self.client.quit()
                except Exception:
                    self.client.close()
        except Exception:
            pass


def deliver_maildir(hop: NextHop, mail_from: str, rcpt_tos: list[str],
                    data: bytes | Content) -> DeliveryResult:
    """Local delivery: Return-Path and Delivered-To on top, as a delivery agent would."""
    assert hop.path is not None
    top = f"Return-Path: <{mail_from}>\r\n".encode()
    top += b"".join(f"Delivered-To: {r}\r\n".encode() for r in rcpt_tos)
    path = write_message(hop.path, Content.of(data).prepend(top))
    return DeliveryResult(True, 250, f"2.0.0 Delivered ({path.name})")


async def deliver(
    config: Config,
    side: str,
    mail_from: str,
    rcpt_tos: list[str],
    data: bytes | Content,
    *,
    smtputf8: bool = False,
) -> DeliveryResult:
    """One-shot delivery to the next hop of ``side`` (release from quarantine, notices, digests).

    ``ok`` is true only when every recipient was accepted and the data was taken.
    """
    listener = config.inbound if side == "inbound" else config.outbound
    hop = listener.deliver_to
    if hop.kind == "maildir":
        try:
            return await asyncio.to_thread(deliver_maildir, hop, mail_from, rcpt_tos, data)
        except OSError as e:
            log.error("maildir delivery to %s failed: %s", hop, e)
            return DeliveryResult(
                False, 451, f"4.3.0 The mail folder could not be written: {e.strerror}")
    up = Upstream(config, listener)
    result = await up.open(mail_from, smtputf8=smtputf8)
    if not result.ok:
        return result
    refused: dict[str, tuple[int, str]] = {}
    for rcpt in rcpt_tos:
        r = await up.rcpt(rcpt)
        if not r.ok:
            refused[rcpt] = (r.code, r.text)
            if not up.client.is_connected:
                return DeliveryResult(False, r.code, r.text, refused)
    if len(refused) == len(rcpt_tos):
        await up.close()
        first = next(iter(refused.values()))
        return DeliveryResult(False, first[0], first[1], refused)
    result = await up.data(data)
    if refused and result.ok:
        return DeliveryResult(False, result.code, result.text, refused)
    return DeliveryResult(result.ok, result.code, result.text, refused)
