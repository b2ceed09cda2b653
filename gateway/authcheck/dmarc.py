"""DMARC (RFC 7489): is the From: domain aligned with a passing SPF or DKIM identity?"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from publicsuffixlist import PublicSuffixList

from gateway.authcheck.dkim import DkimResult
from gateway.authcheck.resolver import DnsTempError, Resolver
from gateway.authcheck.spf import SpfResult

__all__ = ["DmarcResult", "DmarcRecord", "aligned", "check_dmarc", "org_domain", "parse_record",
           "public_suffix"]


@dataclass(frozen=True)
class DmarcRecord:
    p: str = "none"
    sp: str = ""
    adkim: str = "r"
    aspf: str = "r"


@dataclass(frozen=True)
class DmarcResult:
    result: str  # pass fail none temperror permerror
    domain: str  # the From: domain
    policy: str = "none"  # the policy that applies to this domain: none quarantine reject
    reason: str = ""


@lru_cache(maxsize=1)
def _psl() -> PublicSuffixList:
    return PublicSuffixList()


def public_suffix(domain: str) -> str:
    """``stanion-pc.gov.uk`` -> ``gov.uk`` (empty when unknown)."""
    return _psl().publicsuffix(domain.lower().rstrip(".")) or ""


def org_domain(domain: str) -> str:
    """The organisational domain: ``mail.stanion-pc.gov.uk`` -> ``stanion-pc.gov.uk``."""
    domain = domain.lower().rstrip(".")
    return _psl().privatesuffix(domain) or domain


def aligned(identity: str, from_domain: str, mode: str) -> bool:
    identity, from_domain = identity.lower().rstrip("."), from_domain.lower().rstrip(".")
    if mode == "s":
        return identity == from_domain
    return org_domain(identity) == org_domain(from_domain)


def parse_record(text: str) -> DmarcRecord | None:
    """A DMARC TXT record, or None when it is not one (or is broken beyond use)."""
    tags: dict[str, str] = {}
    for part in text.split(";"):
        name, sep, value = part.partition("=")
        if sep:
            tags[name.strip().lower()] = value.strip()
    if tags.get("v") != "DMARC1":
        return None
    p = tags.get("p", "").lower()
    if p not in ("none", "quarantine", "reject"):
        return None
    sp = tags.get("sp", "").lower()
    return DmarcRecord(
        p=p,
        sp=sp if sp in ("none", "quarantine", "reject") else "",
        adkim="s" if tags.get("adkim", "r").lower() == "s" else "r",
        aspf="s" if tags.get("aspf", "r").lower() == "s" else "r",
    )


async def _lookup(resolver: Resolver, domain: str) -> DmarcRecord | None:
    texts = [t for t in await resolver.txt(f"_dmarc.{domain}") if t.startswith("v=DMARC1")]
    if len(texts) != 1:
        return None
    return parse_record(texts[0])


async def check_dmarc(resolver: Resolver, from_domain: str, spf: SpfResult,
                      dkim_results: list[DkimResult]) -> DmarcResult:
    from_domain = from_domain.lower().rstrip(".")
    if not from_domain:
        return DmarcResult("permerror", "", reason="no usable From: address")
    org = org_domain(from_domain)
    try:
        record = await _lookup(resolver, from_domain)
        policy_from_org = False
        if record is None and org != from_domain:
            record = await _lookup(resolver, org)
            policy_from_org = True
    except DnsTempError as e:
        return DmarcResult("temperror", from_domain, reason=str(e))
    if record is None:
        return DmarcResult("none", from_domain)
    policy = record.sp if policy_from_org and record.sp else record.p
    dkim_ok = any(r.result == "pass" and aligned(r.domain, from_domain, record.adkim)
                  for r in dkim_results)
    spf_ok = (spf.result == "pass" and spf.identity == "mailfrom"
              and aligned(spf.domain, from_domain, record.aspf))
    if dkim_ok or spf_ok:
        return DmarcResult("pass", from_domain, policy)
    return DmarcResult("fail", from_domain, policy,
                       "neither SPF nor DKIM passed for a domain aligned with the From: domain")
