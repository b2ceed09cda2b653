"""Is a message really from who it says? SPF, DKIM and DMARC, written into Authentication-Results.

``authenticate`` runs the three checks under one deadline; any DNS trouble becomes ``temperror``
for the check it hit (never an exception). ``header_value`` renders the RFC 8601 header with the
gateway's hostname as authserv-id (fields that claim that id but arrived from outside are
removed on arrival: :func:`gateway.mime.headers.strip_trust_headers`).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field

import authres
import authres.dmarc
import idna

from gateway.authcheck.dkim import DkimResult, verify_dkim
from gateway.authcheck.dmarc import DmarcResult, aligned, check_dmarc, org_domain
from gateway.authcheck.resolver import DnsConfig, DnsTempError, Resolver, parse_dns, resolver_for
from gateway.authcheck.spf import SpfResult, check_spf
from gateway.content import Content

__all__ = [
    "AuthResults",
    "DkimResult",
    "DmarcResult",
    "DnsConfig",
    "DnsTempError",
    "Resolver",
    "SpfResult",
    "authenticate",
    "header_value",
    "org_domain",
    "parse_dns",
    "resolver_for",
]


@dataclass(frozen=True)
class AuthResults:
    spf: SpfResult
    dkim: tuple[DkimResult, ...]
    dmarc: DmarcResult
    from_domain: str
    notes: tuple[str, ...] = field(default=())

    def authentic(self) -> bool:
        """The From: domain is shown genuine: DMARC pass, or (no DMARC record) an aligned pass."""
        if self.dmarc.result == "pass":
            return True
        if self.dmarc.result != "none" or not self.from_domain:
            return False
        return any(d.result == "pass" and aligned(d.domain, self.from_domain, "r")
                   for d in self.dkim) or (
            self.spf.result == "pass" and self.spf.identity == "mailfrom"
            and aligned(self.spf.domain, self.from_domain, "r"))

    def shown_domains(self) -> frozenset[str]:
        """The domains this message was shown to come from (lower case)."""
        out = {d.domain.lower() for d in self.dkim if d.result == "pass"}
        if self.spf.result == "pass" and self.spf.identity == "mailfrom":
            out.add(self.spf.domain.lower())
        if self.authentic():
            out.add(self.from_domain.lower())
        return frozenset(out)

    def dns_trouble(self) -> bool:
        return "temperror" in (self.spf.result, self.dmarc.result) or any(
            d.result == "temperror" for d in self.dkim)

    def failures(self) -> list[str]:
        """Plain-English sentences for each check that positively failed."""
        out = []
        if self.spf.result == "fail":
            out.append(f"the sending server is not allowed to send mail for {self.spf.domain} "
                       "(SPF fail)")
        bad = [d for d in self.dkim if d.result in ("fail", "permerror")]
        if bad and not any(d.result == "pass" for d in self.dkim):
            out.append(f"its DKIM signature from {bad[0].domain or 'an unnamed domain'} "
                       "does not verify")
        if self.dmarc.result == "fail":
            out.append(f"{self.dmarc.domain} publishes a DMARC policy of '{self.dmarc.policy}' "
                       "and the message does not pass it")
        return out


async def authenticate(resolver: Resolver, *, data: bytes | Content, client_ip: str,
                       mail_from: str, helo: str, from_domain: str,
                       deadline: float) -> AuthResults:
    """SPF for the envelope sender, DKIM for every signature, DMARC for the From: domain."""
    spf = SpfResult("temperror", mail_from.rpartition("@")[2] or helo, "mailfrom",
                    "no answer in time")
    dkim: list[DkimResult] = []
    dmarc = DmarcResult("temperror", from_domain, reason="no answer in time")
    try:
        async with asyncio.timeout(deadline):
            spf, dkim = await asyncio.gather(check_spf(resolver, client_ip, mail_from, helo),
                                             verify_dkim(resolver, data))
            dmarc = await check_dmarc(resolver, from_domain, spf, dkim)
    except TimeoutError:
        pass
    return AuthResults(spf, tuple(dkim), dmarc, from_domain.lower())


def _reason(text: str) -> str:
    # Quoted by the field's writer; a ";" would still read as the start of another result.
    return re.sub(r'["\\\r\n;]|[^\x20-\x7e]', "?", a_labels(text))[:120]


def _value(text: str) -> str:
    """A property's value (a domain, a mailbox), never more than one token of the field."""
    return re.sub(r'[^\x21-\x7e]|[;"\\()]', "?", a_labels(text))


def _label(label: str) -> str:
    if label.isascii():
        return label
    try:
        return idna.alabel(label).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        return label  # no DNS form: shown as "?" where the field is written


def a_labels(text: str) -> str:
    """``text`` with the labels of its domains written as DNS has them (xn--...): the field is
    ASCII, and a "?" in place of a letter would tell a reader nothing."""
    if text.isascii():
        return text

    def word(m: re.Match[str]) -> str:
        if m.group(0).isascii() or text.startswith("@", m.end()):
            return m.group(0)  # ASCII already, or a mailbox's own name (ré@...: no DNS form)
        try:  # UTS 46 first: it also makes the other alphabets' full stops dots
            mapped = idna.uts46_remap(m.group(0), std3_rules=False)
        except (idna.IDNAError, UnicodeError):
            mapped = m.group(0)
        return ".".join(_label(x) for x in mapped.split("."))

    return re.sub(r"[^\s\"'(),;:<>@\[\]/=]+", word, text)


def header_value(authserv_id: str, results: AuthResults) -> str:
    """The value of our Authentication-Results field (RFC 8601), in ASCII."""
    parts: list[authres.core.AuthenticationResult] = []
    spf = results.spf
    spf_kw = {"reason": _reason(spf.reason)} if spf.reason else {}
    if spf.identity == "helo":
        parts.append(authres.SPFAuthenticationResult(
            result=spf.result, smtp_helo=_value(spf.domain), **spf_kw))
    else:
        parts.append(authres.SPFAuthenticationResult(
            result=spf.result, smtp_mailfrom=_value(spf.domain) or "unknown", **spf_kw))
    if not results.dkim:
        parts.append(authres.DKIMAuthenticationResult(result="none"))
    for d in results.dkim:
        kw = {"reason": _reason(d.reason)} if d.reason else {}
        parts.append(authres.DKIMAuthenticationResult(
            result=d.result, header_d=_value(d.domain) or None, header_s=_value(d.selector) or None,
            **kw))
    dm = results.dmarc
    dm_kw = {"reason": _reason(dm.reason)} if dm.reason else {}
    parts.append(authres.dmarc.DMARCAuthenticationResult(
        result=dm.result, header_from=_value(dm.domain) or "unknown", **dm_kw))
    header = authres.AuthenticationResultsHeader(authserv_id=authserv_id, results=parts)
    return str(header).split(":", 1)[1].strip()
