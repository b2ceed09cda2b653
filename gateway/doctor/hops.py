"""Each side's next hop: a Maildir folder that can be written, or an SMTP server that answers,
encrypts as its ``deliver_to`` says, shows a certificate the gateway accepts, and offers what the
gateway passes on (SIZE, DSN, SMTPUTF8, AUTH for a login).

:func:`probe_smtp` talks to the server (connect, EHLO, STARTTLS, EHLO, QUIT; nothing is sent)
and gives the facts as an :class:`SmtpProbe`; :func:`assess_smtp` says what they mean.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import aiosmtplib
from cryptography import x509

from gateway.config import ListenerConfig, NextHop
from gateway.delivery.nexthop import tls_context
from gateway.doctor.results import Result, ok, problem, warning
from gateway.doctor.tls import assess_dates, certificate_names, describe

__all__ = ["SmtpProbe", "assess_smtp", "check_maildir", "probe_smtp", "tls_context"]


# --------------------------------------------------------------------------- Maildir

def _probe_write(folder: Path) -> None:
    """Make and remove a file in ``folder`` (raises OSError): the one true test of writing."""
    fd, name = tempfile.mkstemp(prefix=".doctor-", dir=folder)
    os.close(fd)
    os.unlink(name)


def check_maildir(side: str, path: Path) -> Result:
    c, subject = "next-hop.maildir", f"{side}: maildir:{path}"
    fix = (f"Make it a folder the gateway's user can write (mkdir -p {path}; chown it to that "
           f"user), or correct [{side}] deliver_to.")
    existing = path.absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return problem(c, subject, f'The {side} side delivers into "{path}", but "{existing}" '
                                   "is a file, not a folder.", fix)
    target = path / "tmp" if (path / "tmp").is_dir() else existing
    try:
        _probe_write(target)
    except OSError as e:
        return problem(c, subject, f'The {side} side delivers into "{path}", but "{target}" '
                                   f"cannot be written ({e.strerror}).", fix)
    if existing != path.absolute():
        return ok(c, subject, f'The {side} side delivers into "{path}", which does not exist '
                              f'yet; the gateway makes it at the first delivery ("{existing}" '
                              "can be written).")
    return ok(c, subject, f'The {side} side delivers into the Maildir folder "{path}", which '
                          "can be written.")


# --------------------------------------------------------------------------- SMTP

@dataclass(frozen=True)
class SmtpProbe:
    """What one conversation with an SMTP next hop showed."""

    connected: bool = False  # it greeted with 220
    error: str = ""  # why it could not be reached or talked to
    greeting: str = ""
    starttls_offered: bool = False
    encrypted: bool = False
    tls_error: str = ""  # the handshake or the certificate check failed: why
    certificate: bytes = b""  # its certificate, DER
    extensions: Mapping[str, str] = field(default_factory=dict)  # the last EHLO's (after TLS)


def _why(e: BaseException) -> str:
    cause = e.__cause__ or e
    if isinstance(cause, ssl.SSLCertVerificationError):
        return cause.verify_message or str(cause)
    if isinstance(cause, OSError) and cause.errno and not isinstance(cause, ssl.SSLError):
        return os.strerror(cause.errno).lower()
    return str(e) or type(e).__name__


async def probe_smtp(hop: NextHop, listener: ListenerConfig, local_hostname: str,
                     step_seconds: float) -> SmtpProbe:
    """Connect, EHLO, STARTTLS when ``deliver_to`` asks for it, EHLO, QUIT; never raises for
    the server's trouble. ``step_seconds`` bounds each step."""
    ctx = None
    if hop.tls != "none":
        try:
            ctx = tls_context(listener)
        except OSError as e:  # ssl.SSLError too: a CA file that is not one
            return SmtpProbe(tls_error=f'deliver_ca_file "{listener.deliver_ca_file}" cannot '
                                       f"be used: {_why(e)}")
    client = aiosmtplib.SMTP(hostname=hop.host, port=hop.port, local_hostname=local_hostname,
                             timeout=step_seconds, use_tls=hop.tls == "implicit", start_tls=False,
                             tls_context=ctx)
    try:
        try:
            greeting = await client.connect()
        except aiosmtplib.SMTPConnectResponseError as e:
            return SmtpProbe(error=f"it greets with {e.code} {e.message}")
        except aiosmtplib.SMTPConnectTimeoutError:
            unit = "second" if step_seconds == 1 else "seconds"
            return SmtpProbe(error=f"it did not greet within {step_seconds:g} {unit}")
        except (aiosmtplib.SMTPException, OSError) as e:
            if hop.tls == "implicit" and isinstance(e.__cause__ or e, ssl.SSLError):
                return SmtpProbe(tls_error=_why(e))
            return SmtpProbe(error=_why(e))
        first = greeting.message.splitlines()[0] if greeting.message else ""
        said = f"{greeting.code} {first}".strip()
        encrypted = hop.tls == "implicit"
        try:
            await client.ehlo()
            offered = client.supports_extension("starttls")
            if offered and hop.tls == "starttls":
                try:
                    await client.starttls()
                    encrypted = True
                    await client.ehlo()
                except (ssl.SSLError, aiosmtplib.SMTPException, OSError) as e:
                    return SmtpProbe(True, greeting=said, starttls_offered=True,
                                     tls_error=_why(e))
            ssl_object = client.get_transport_info("ssl_object") if encrypted else None
            cert = ssl_object.getpeercert(binary_form=True) if ssl_object else None
            extensions = dict(client.esmtp_extensions)
        except (aiosmtplib.SMTPException, OSError) as e:
            return SmtpProbe(True, greeting=said,
                             error=f"it stopped answering after its greeting ({_why(e)})")
        with contextlib.suppress(aiosmtplib.SMTPException, OSError):
            await client.quit()
        return SmtpProbe(True, greeting=said, starttls_offered=offered, encrypted=encrypted,
                         certificate=cert or b"", extensions=extensions)
    finally:
        client.close()


def _certificate(check: str, subject: str, hop: NextHop, listener: ListenerConfig,
                 der: bytes, now: datetime) -> Result:
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        return warning(check, subject, f"{hop} sent a certificate that cannot be read.",
                       "Check the certificate configured on that server.")
    names = ", ".join(certificate_names(cert)[0])
    what = f"{hop}'s certificate (for {names}, issued by {describe(cert.issuer)})"
    if not listener.deliver_tls_verify:
        return warning(check, subject, f"{what} is not checked (deliver_tls_verify = false): "
                                       "anyone on the way could pretend to be the next hop.",
                       "Set deliver_ca_file to the certificate of the CA that issued it and "
                       "remove deliver_tls_verify = false.")
    against = (f'deliver_ca_file "{listener.deliver_ca_file}"' if listener.deliver_ca_file
               else "this machine's CAs")
    return assess_dates(check, subject, cert, now, f"{what}, checked against {against},",
                        "Renew the certificate on that server.")


def _extensions(side: str, hop: NextHop, listener: ListenerConfig, ext: Mapping[str, str],
                max_message_size: int) -> Result:
    c, subject = "next-hop.extensions", f"{side}: {hop}"
    size = ext.get("size", "").strip()
    offered = [f"SIZE {size}" if size else "SIZE"] if "size" in ext else []
    offered += [name.upper() for name in ("dsn", "smtputf8") if name in ext]
    missing = [name.upper() for name in ("size", "dsn", "smtputf8") if name not in ext]
    text = f"{hop} offers {', '.join(offered) or 'none of SIZE, DSN, SMTPUTF8'}"
    if missing and offered:
        text += f" (not {', '.join(missing)})"
    if size.isdigit() and 0 < int(size) < max_message_size:
        text += (f"; its limit is below [gateway] max_message_size ({max_message_size}), so "
                 "the gateway offers its clients the smaller one")
    if listener.deliver_user and "auth" not in ext:
        return problem(c, subject, f"{text}, but no AUTH, so the gateway cannot log in as "
                                   f"{listener.deliver_user}.",
                       "Turn on logins there (after STARTTLS), or remove deliver_user.")
    if "smtputf8" not in ext:
        return warning(c, subject, f"{text}: mail to or from an international (non-ASCII) "
                                   "address is refused.",
                       "Turn SMTPUTF8 on there if it can (Postfix: smtputf8_enable = yes).")
    return ok(c, subject, f"{text}.")


def assess_smtp(side: str, hop: NextHop, listener: ListenerConfig, probe: SmtpProbe,
                now: datetime, max_message_size: int) -> list[Result]:
    subject = f"{side}: {hop}"
    if probe.error:
        return [problem("next-hop.reach", subject,
                        f"The {side} next hop {hop} cannot be used ({probe.error}), so mail "
                        "for it is turned away for now (451 4.4.1).",
                        f"Start that mail server, or correct [{side}] deliver_to.")]
    out: list[Result] = []
    if probe.connected:
        out.append(ok("next-hop.reach", subject, f"The {side} next hop {hop} answers: "
                                                 f"{probe.greeting}."))
    ca_fix = ("If it uses a certificate of its own CA, set deliver_ca_file to that CA's "
              "certificate; deliver_tls_verify = false only on a private network.")
    if probe.tls_error:
        out.append(problem("next-hop.tls", subject,
                           f"The TLS connection to {hop} failed ({probe.tls_error}), so the "
                           "gateway cannot deliver to it.", ca_fix))
        return out
    if hop.tls == "starttls" and not probe.starttls_offered:
        out.append(problem("next-hop.tls", subject,
                           f"{hop} does not offer STARTTLS, though deliver_to asks for it, so "
                           "the gateway cannot deliver to it.",
                           "Turn STARTTLS on there (Postfix: smtpd_tls_security_level = may), "
                           "or write smtp:// if it is on this machine or a private network."))
        return out
    if hop.tls == "none":
        if probe.starttls_offered:
            out.append(warning("next-hop.tls", subject,
                               f"{hop} offers STARTTLS, but deliver_to says smtp://, so mail "
                               "goes to it unencrypted.",
                               f'Write deliver_to = "smtp+starttls://{hop.host}:{hop.port}".'))
        else:
            out.append(ok("next-hop.tls", subject,
                          f"Mail goes to {hop} unencrypted, as deliver_to says (fine on this "
                          "machine or a private network)."))
    else:
        out.append(ok("next-hop.tls", subject, f"{hop} encrypts the connection."))
        if probe.certificate:
            out.append(_certificate("next-hop.certificate", subject, hop, listener,
                                    probe.certificate, now))
    out.append(_extensions(side, hop, listener, probe.extensions, max_message_size))
    return out
