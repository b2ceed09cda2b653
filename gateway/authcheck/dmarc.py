"""DMARC (RFC 7489): does the From: domain publish a policy, and does the message pass it?

The steps, each a small function with its own table of tests:

* **Discovery** (6.6.3): the TXT records at ``_dmarc.<From domain>`` that start ``v=DMARC1``;
  only if there are none, those at ``_dmarc.<organisational domain>``. Exactly one record must
  remain, or no DMARC processing applies (``none``); in particular two records at the From
  domain do not send us on to the organisational domain. A record without a valid ``p=``, or
  with an invalid ``sp=``, counts as ``p=none`` when it names a valid ``rua=`` address, and is
  otherwise not applied (``none``, with the reason).
* **The organisational domain** (3.2) comes from the public suffix list (``publicsuffixlist``,
  its private entries included): one label more than the longest public suffix.
* **Alignment** (3.1): relaxed (the default) compares organisational domains, strict compares
  the names themselves; ``adkim`` for DKIM ``d=``, ``aspf`` for the domain SPF checked. For a
  null envelope sender that is the HELO name, which RFC 7208 2.4 makes the MAIL FROM identity.
* **The result**: ``pass`` with one aligned pass. Without one, ``temperror`` if an aligned check
  could not be finished for DNS trouble (a DNS failure is never called a forgery), else ``fail``.
* **The policy** (6.3): ``p``, or ``sp`` when the record was found at the organisational domain
  for a mail from one of its subdomains. ``pct`` (6.6.4): a failing message is subject to the
  policy with that probability; one left out gets the next milder one (``reject`` becomes
  ``quarantine``, ``quarantine`` becomes ``none``). The random draw is a parameter.

DMARCbis (draft-ietf-dmarc-dmarcbis) replaces the public suffix list with a walk up the DNS tree
and is not supported. It was still a draft when this was written (approved by the IESG in 2025,
waiting for publication), and the walk comes as one piece with tags RFC 7489 does not have
(``psd=``, ``np=``, ``t=``) and without ``pct=``, which it drops: walking the tree for RFC 7489
records would follow neither document. It also costs up to eight TXT look-ups a message where
RFC 7489 needs two at most. :func:`discover` is the one place that would change.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

from publicsuffixlist import PublicSuffixList

from gateway.authcheck.dkim import DkimResult
from gateway.authcheck.resolver import DnsLookup, DnsTempError
from gateway.authcheck.spf import SpfResult

__all__ = ["Discovery", "DmarcRecord", "DmarcResult", "aligned", "check_dmarc", "discover",
           "disposition", "evaluate", "is_dmarc_record", "org_domain", "parse_record",
           "public_suffix", "requested_policy"]

POLICIES = ("none", "quarantine", "reject")


@dataclass(frozen=True)
class DmarcRecord:
    p: str = "none"
    sp: str = ""  # "" means as p
    adkim: str = "r"
    aspf: str = "r"
    pct: int = 100
    problem: str = ""  # why the record cannot be applied at all; "" when it can


@dataclass(frozen=True)
class DmarcResult:
    result: str  # pass fail none temperror permerror
    domain: str  # the From: domain
    policy: str = "none"  # what to do with this message: none quarantine reject (after pct)
    reason: str = ""
    requested: str = "none"  # what the domain owner asks for this domain (p, or sp)
    policy_domain: str = ""  # where the record was found: the From domain or its org domain
    pct: int = 100


@lru_cache(maxsize=1)
def _psl() -> PublicSuffixList:
    return PublicSuffixList()


def _norm(domain: str) -> str:
    domain = domain.lower()
    return domain[:-1] if domain.endswith(".") else domain


def public_suffix(domain: str) -> str:
    """``stanion-pc.gov.uk`` -> ``gov.uk`` (empty when unknown)."""
    return _psl().publicsuffix(_norm(domain)) or ""


def org_domain(domain: str) -> str:
    """The organisational domain: ``mail.stanion-pc.gov.uk`` -> ``stanion-pc.gov.uk``; a name
    that is itself a public suffix is its own."""
    domain = _norm(domain)
    return _psl().privatesuffix(domain) or domain


def aligned(identity: str, from_domain: str, mode: str) -> bool:
    """Strict (``"s"``): the same name; relaxed (``"r"``): the same organisational domain."""
    identity, from_domain = _norm(identity), _norm(from_domain)
    if not identity or not from_domain:
        return False
    if mode == "s":
        return identity == from_domain
    return org_domain(identity) == org_domain(from_domain)


# ----------------------------------------------------------------------------- records

_VERSION = re.compile(r"[vV][ \t]*=[ \t]*DMARC1[ \t]*(;|$)")
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[^\s!,]+(![0-9]+[kmgtKMGT]?)?")


def is_dmarc_record(text: str) -> bool:
    """Does the TXT string start with the DMARC version tag (6.6.3 step 2)?"""
    return _VERSION.match(text) is not None


def _tags(text: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for part in text.split(";"):
        name, sep, value = part.partition("=")
        if sep:
            tags.setdefault(name.strip(" \t").lower(), value.strip(" \t"))
    return tags


def parse_record(text: str) -> DmarcRecord | None:
    """A DMARC record, None when the text is not one. Bad optional tags fall back to their
    defaults (6.3); a bad ``p`` or ``sp`` is 6.6.3 step 6."""
    if not is_dmarc_record(text):
        return None
    tags = _tags(text)
    p, sp = tags.get("p", "").lower(), tags.get("sp", "").lower()
    if p not in POLICIES or (sp and sp not in POLICIES):
        rua = [u.strip(" \t") for u in tags.get("rua", "").split(",")]
        if any(_URI.fullmatch(u) for u in rua):
            return DmarcRecord(p="none")
        what = "no valid p=" if p not in POLICIES else "an invalid sp="
        return DmarcRecord(problem=f"its DMARC record has {what} and no valid rua=")
    pct = tags.get("pct", "100")
    return DmarcRecord(
        p=p,
        sp=sp,
        adkim="s" if tags.get("adkim", "").lower() == "s" else "r",
        aspf="s" if tags.get("aspf", "").lower() == "s" else "r",
        pct=int(pct) if re.fullmatch(r"\d{1,3}", pct) and int(pct) <= 100 else 100,
    )


# ----------------------------------------------------------------------------- discovery

@dataclass(frozen=True)
class Discovery:
    record: DmarcRecord | None
    policy_domain: str = ""  # whose _dmarc record it is
    reason: str = ""  # why there is none


async def discover(dns: DnsLookup, from_domain: str) -> Discovery:
    """The policy record for ``from_domain`` (6.6.3); DnsTempError passes through."""
    from_domain = _norm(from_domain)
    org = org_domain(from_domain)
    domain = from_domain
    texts = [t for t in await dns.txt(f"_dmarc.{domain}") if is_dmarc_record(t)]
    if not texts and org != from_domain:
        domain = org
        texts = [t for t in await dns.txt(f"_dmarc.{domain}") if is_dmarc_record(t)]
    if not texts:
        return Discovery(None, reason="")
    if len(texts) > 1:
        return Discovery(None, domain, f"_dmarc.{domain} publishes more than one DMARC record")
    record = parse_record(texts[0])
    assert record is not None  # texts holds DMARC records only
    if record.problem:
        return Discovery(None, domain, f"{domain}: {record.problem}")
    return Discovery(record, domain)


# ----------------------------------------------------------------------------- decisions

def requested_policy(record: DmarcRecord, from_domain: str, policy_domain: str) -> str:
    """``sp`` (when given) for a subdomain covered by its organisational domain's record."""
    if _norm(policy_domain) != _norm(from_domain) and record.sp:
        return record.sp
    return record.p


def disposition(policy: str, pct: int, draw: Callable[[], float]) -> str:
    """The policy for one failing message under ``pct`` (6.6.4); ``draw`` is uniform in [0, 1)
    and is only called when the answer depends on it."""
    if pct >= 100 or policy == "none" or (pct > 0 and draw() * 100 < pct):
        return policy
    return "quarantine" if policy == "reject" else "none"


def evaluate(from_domain: str, record: DmarcRecord, spf: SpfResult,
             dkim: Sequence[DkimResult]) -> str:
    """pass, fail or temperror for a message under ``record`` (4.2, 3.1)."""
    dkim_ok = [d.result for d in dkim if aligned(d.domain, from_domain, record.adkim)]
    spf_ok = [spf.result] if aligned(spf.domain, from_domain, record.aspf) else []
    found = dkim_ok + spf_ok
    if "pass" in found:
        return "pass"
    if "temperror" in found:
        return "temperror"
    return "fail"


async def check_dmarc(resolver: DnsLookup, from_domain: str, spf: SpfResult,
                      dkim_results: Sequence[DkimResult], *,
                      draw: Callable[[], float] = random.random) -> DmarcResult:
    """Discover the From: domain's policy and judge the message by it."""
    from_domain = _norm(from_domain)
    if not from_domain:
        return DmarcResult("permerror", "", reason="no usable From: address")
    try:
        found = await discover(resolver, from_domain)
    except DnsTempError as e:
        return DmarcResult("temperror", from_domain, reason=str(e))
    record = found.record
    if record is None:
        return DmarcResult("none", from_domain, reason=found.reason,
                           policy_domain=found.policy_domain)
    requested = requested_policy(record, from_domain, found.policy_domain)
    result = evaluate(from_domain, record, spf, dkim_results)
    judged = DmarcResult(result, from_domain, requested=requested,
                         policy_domain=found.policy_domain, pct=record.pct)
    if result == "pass":
        return replace(judged, policy=requested)
    if result == "temperror":
        return replace(judged, reason="an aligned check could not be finished (DNS)")
    return replace(judged, policy=disposition(requested, record.pct, draw),
                   reason="neither SPF nor DKIM passed for a domain aligned with the From: "
                          "domain")
