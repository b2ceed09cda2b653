"""DNS for the council's domains: MX, SPF, the DKIM key and DMARC, as the world sees them.

Each ``assess_*`` function is pure: it takes what DNS answered and says what it means. The
``check_*`` coroutines ask the gateway's own resolver ([dns]) and hand the answers over; a lookup
that cannot be answered is a problem saying so, never an exception.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from gateway.adapters.dkim_signing import SigningKey, txt_record, zone_line
from gateway.authcheck.dmarc import Discovery, discover, requested_policy
from gateway.authcheck.resolver import DnsLookup, DnsTempError
from gateway.authcheck.spf import SpfResult, check_spf
from gateway.authcheck.spf_record import SpfPermError, parse_record, select_record
from gateway.doctor.results import Result, Status, ok, problem, warning, worst

__all__ = [
    "GatewayAddress",
    "assess_dkim",
    "assess_dmarc",
    "assess_mx",
    "assess_spf",
    "check_dkim",
    "check_dmarc",
    "check_mx",
    "check_spf_record",
    "dkim_public_key",
    "find_gateway_address",
]


@dataclass(frozen=True)
class GatewayAddress:
    """Where other mail servers reach the gateway (empty: not known)."""

    addresses: tuple[str, ...] = ()

    def __str__(self) -> str:
        return ", ".join(self.addresses)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _dns_failed(check: str, subject: str, name: str, rtype: str, e: DnsTempError) -> Result:
    return problem(check, subject,
                   f"The {rtype} record of {name} could not be looked up ({e}), so it could "
                   "not be checked.",
                   "Check that the name servers in [dns] nameservers (or /etc/resolv.conf) "
                   f"answer from this machine: dig {rtype} {name}")


async def _addresses(dns: DnsLookup, name: str) -> list[str]:
    v4, v6 = await asyncio.gather(dns.query(name, "A"), dns.query(name, "AAAA"))
    return v4 + v6


async def find_gateway_address(dns: DnsLookup, configured: Sequence[str], hostname: str
                               ) -> tuple[GatewayAddress, Result]:
    """``[doctor] public_address`` when set, else what ``[gateway] hostname`` resolves to."""
    c = "dns.address"
    if configured:
        found = GatewayAddress(tuple(configured))
        return found, ok(c, hostname, f"The gateway's public address is {found} "
                                      "([doctor] public_address).")
    try:
        addresses = await _addresses(dns, hostname)
    except DnsTempError as e:
        return GatewayAddress(), _dns_failed(c, hostname, hostname, "A", e)
    if not addresses:
        return GatewayAddress(), warning(
            c, hostname,
            f"The gateway's hostname {hostname} does not resolve and [doctor] public_address "
            "is not set, so whether the MX and SPF records name the gateway cannot be checked.",
            f"Publish an A record for {hostname}, or set [doctor] public_address to the "
            'address other mail servers reach the gateway at, e.g. "203.0.113.7".')
    found = GatewayAddress(tuple(addresses))
    return found, ok(c, hostname, f"The gateway's hostname {hostname} resolves to {found}; "
                                  "the MX and SPF records are checked against that.")


# --------------------------------------------------------------------------- MX

def assess_mx(domain: str, hosts: Sequence[str], resolved: Mapping[str, Sequence[str]],
              gateway: GatewayAddress, hostname: str) -> Result:
    """``hosts`` the MX names in order of preference, ``resolved`` their addresses."""
    c = "dns.mx"
    example = f"{domain}. IN MX 10 {hostname}."
    if not hosts:
        return problem(c, domain, f"{domain} publishes no MX record, so other mail servers do "
                                  "not know where to deliver its mail.",
                       f"Publish an MX record naming the gateway: {example}")
    if list(hosts) == ["."]:
        return problem(c, domain, f"{domain} publishes a null MX record (RFC 7505): it tells "
                                  "the world it takes no mail at all.",
                       f"Replace it with an MX record naming the gateway: {example}")
    listed = ", ".join(hosts)
    if not gateway.addresses:
        return ok(c, domain, f"{domain} publishes MX records ({listed}); whether they name the "
                             "gateway is not known, as its address is not.")
    mine = {_ip(a) for a in gateway.addresses} - {None}
    at_gateway = [h for h in hosts if mine & {_ip(a) for a in resolved.get(h, ())}]
    others = [h if resolved.get(h) else f"{h} (which does not resolve)"
              for h in hosts if h not in at_gateway]
    where = f"the gateway ({gateway})"
    if not at_gateway:
        return problem(c, domain, f"None of {domain}'s MX hosts ({', '.join(others)}) is "
                                  f"{where}: its mail goes around the gateway, unchecked.",
                       f"Point the MX record at the gateway: {example}")
    if others:
        return warning(c, domain, f"{domain}'s MX {', '.join(at_gateway)} is {where}, but "
                                  f"{', '.join(others)} is not: mail sent there goes around "
                                  "the gateway, unchecked.",
                       "Remove the other MX records, or have those servers pass mail only to "
                       "the gateway.")
    return ok(c, domain, f"{domain}'s MX ({listed}) is {where}.")


async def check_mx(dns: DnsLookup, domain: str, gateway: GatewayAddress, hostname: str
                   ) -> Result:
    try:
        hosts = await dns.query(domain, "MX")
        resolved: dict[str, list[str]] = {}
        if gateway.addresses and hosts != ["."]:
            found = await asyncio.gather(*(_addresses(dns, h) for h in hosts))
            resolved = dict(zip(hosts, found, strict=True))
    except DnsTempError as e:
        return _dns_failed("dns.mx", domain, domain, "MX", e)
    return assess_mx(domain, hosts, resolved, gateway, hostname)


# --------------------------------------------------------------------------- SPF

def _spf_with(record: str, addresses: Sequence[str]) -> str:
    """The record with ``ip4:``/``ip6:`` terms for ``addresses`` added before its ``all``."""
    terms = record.split()
    add = [f"ip{4 if ':' not in a else 6}:{a}" for a in addresses]
    at = next((i for i, t in enumerate(terms) if re.fullmatch(r"[+\-~?]?all", t, re.I)),
              len(terms))
    return " ".join(terms[:at] + add + terms[at:])


def assess_spf(domain: str, record: str, results: Sequence[tuple[str, SpfResult]],
               smarthost: str = "") -> Result:
    """What the SPF check of each gateway address gave. ``smarthost``: where outgoing mail
    leaves from when it is not the gateway itself (then a fail is only a warning)."""
    c = "dns.spf"
    if not results:
        return ok(c, domain, f"{domain} publishes an SPF record ({record}); whether it allows "
                             "the gateway is not known, as its address is not.")
    bad = [(a, r) for a, r in results if r.result != "pass"]
    if not bad:
        who = ", ".join(a for a, _ in results)
        return ok(c, domain, f"{domain}'s SPF record allows the gateway's address {who}.")
    for address, r in bad:
        if r.result in ("temperror", "permerror"):
            return problem(c, domain, f"The SPF check of {domain} for {address} ended in "
                                      f"{r.result} ({r.reason}).",
                           "Correct the record (an SPF checker such as "
                           "https://www.kitterman.com/spf/validate.html names the error), and "
                           "check the name servers answer.")
    who = ", ".join(a for a, _ in bad)
    results_text = ", ".join(sorted({r.result for _, r in bad}))
    fixed = _spf_with(record, [a for a, _ in bad])
    statuses = [Status.PROBLEM if r.result == "fail" else Status.WARNING for _, r in bad]
    if smarthost:
        return warning(c, domain, f"{domain}'s SPF record does not allow the gateway's address "
                                  f"{who} ({results_text}); that is fine if all outgoing mail "
                                  f"leaves through the smarthost {smarthost} and the record "
                                  "allows that instead.",
                       f"If the gateway sends mail out itself, publish: {fixed}")
    sentence = (f"{domain}'s SPF record does not allow the gateway's address {who} "
                f"({results_text}): receivers may refuse the council's mail or take it for "
                "junk.")
    fix = f"Add the gateway to the record: {domain}. IN TXT \"{fixed}\""
    if worst(statuses) is Status.PROBLEM:
        return problem(c, domain, sentence, fix)
    return warning(c, domain, sentence, fix)


async def check_spf_record(dns: DnsLookup, domain: str, gateway: GatewayAddress, hostname: str,
                           smarthost: str = "") -> Result:
    c = "dns.spf"
    try:
        texts = await dns.txt(domain)
    except DnsTempError as e:
        return _dns_failed(c, domain, domain, "TXT", e)
    try:
        record = select_record(texts)
        if record is None:
            return problem(c, domain, f"{domain} publishes no SPF record, so receivers cannot "
                                      "tell the council's mail from forgeries by where it comes "
                                      "from.",
                           f'Publish one naming the gateway: {domain}. IN TXT "v=spf1 '
                           f'a:{hostname} -all"')
        parse_record(record)
    except SpfPermError as e:
        return problem(c, domain, f"{domain}'s SPF record has an error ({e}), so receivers "
                                  "treat it as broken (permerror).",
                       "Publish exactly one TXT record starting v=spf1, written as RFC 7208 "
                       "says.")
    results = await asyncio.gather(*(
        check_spf(dns, a, f"postmaster@{domain}", hostname, receiver=hostname)
        for a in gateway.addresses))
    return assess_spf(domain, record, list(zip(gateway.addresses, results, strict=True)),
                      smarthost)


# --------------------------------------------------------------------------- DKIM

def dkim_public_key(key: SigningKey) -> str:
    """The ``p=`` value that goes with a signing key, as ``dkim-keygen`` prints it."""
    if key.algorithm == "ed25519-sha256":
        private = ed25519.Ed25519PrivateKey.from_private_bytes(
            base64.b64decode(key.private_key.strip()))
        raw = private.public_key().public_bytes(serialization.Encoding.Raw,
                                                serialization.PublicFormat.Raw)
        return base64.b64encode(raw).decode("ascii")
    loaded = serialization.load_pem_private_key(key.private_key.replace(b"\r\n", b"\n"),
                                                password=None)
    der = loaded.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode("ascii")


def _tags(text: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for part in text.split(";"):
        name, sep, value = part.partition("=")
        if sep:
            tags.setdefault(name.strip().lower(), "".join(value.split()))
    return tags


def assess_dkim(key: SigningKey, key_file: str, public: str, published: Sequence[str]
                ) -> Result:
    """``public`` the configured key's ``p=``; ``published`` the TXT strings in DNS."""
    c = "dns.dkim"
    name = f"{key.selector}._domainkey.{key.domain}"
    wanted = txt_record(key.algorithm, public)
    fix = f"Publish this TXT record: {zone_line(key.selector, key.domain, wanted)}"
    records = [_tags(t) for t in published if "p" in _tags(t)]
    if not records:
        return problem(c, name, f"No DKIM key is published at {name}, so receivers cannot check "
                                "the gateway's signatures.", fix)
    if len(records) > 1:
        return problem(c, name, f"{name} publishes {len(records)} DKIM keys; receivers may "
                                "check the signatures against any of them.",
                       f"Keep only one. {fix}")
    tags = records[0]
    kind = "rsa" if key.algorithm == "rsa-sha256" else "ed25519"
    if not tags["p"]:
        return problem(c, name, f"The DKIM key at {name} is revoked (its p= is empty), so every "
                                "signature with it fails.", fix)
    if tags.get("k", "rsa").lower() != kind or tags["p"] != public:
        return problem(c, name, f"The DKIM key published at {name} is not the one in "
                                f"{key_file}, so receivers find every signature broken.",
                       f"Publish the record for the configured key instead. {fix}")
    return ok(c, name, f"The DKIM key published at {name} matches {key_file}.")


async def check_dkim(dns: DnsLookup, key: SigningKey, key_file: str) -> Result:
    name = f"{key.selector}._domainkey.{key.domain}"
    try:
        published = await dns.txt(name)
    except DnsTempError as e:
        return _dns_failed("dns.dkim", name, name, "TXT", e)
    return assess_dkim(key, key_file, dkim_public_key(key), published)


# --------------------------------------------------------------------------- DMARC

def assess_dmarc(domain: str, found: Discovery) -> Result:
    c = "dns.dmarc"
    if found.record is None:
        if found.reason:
            return problem(c, domain, f"{domain}'s DMARC record cannot be applied: "
                                      f"{found.reason}.",
                           f"Publish exactly one valid record at _dmarc.{found.policy_domain}.")
        return problem(c, domain, f"{domain} publishes no DMARC record, so receivers are not "
                                  "asked to stop mail that forges its address.",
                       f'Publish one: _dmarc.{domain}. IN TXT "v=DMARC1; p=quarantine; '
                       f'rua=mailto:postmaster@{domain}"')
    policy = requested_policy(found.record, domain, found.policy_domain)
    where = "" if found.policy_domain == domain else f" (from {found.policy_domain}'s record)"
    pct = f", for {found.record.pct}% of failing mail" if found.record.pct < 100 else ""
    if policy == "none":
        return warning(c, domain, f"{domain}'s DMARC policy is p=none{where}: receivers are "
                                  "asked only to report mail that forges its address, not to "
                                  "stop it.",
                       "Once the reports show the council's own mail passes, change it to "
                       "p=quarantine, and later p=reject.")
    verb = "refuse" if policy == "reject" else "treat as junk"
    return ok(c, domain, f"{domain}'s DMARC policy is p={policy}{where}: receivers {verb} mail "
                         f"that forges its address{pct}.")


async def check_dmarc(dns: DnsLookup, domain: str) -> Result:
    try:
        found = await discover(dns, domain)
    except DnsTempError as e:
        return _dns_failed("dns.dmarc", domain, f"_dmarc.{domain}", "TXT", e)
    return assess_dmarc(domain, found)
