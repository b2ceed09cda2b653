"""A small async DNS adapter for the authentication checks, with the ``[dns]`` config section.

Every lookup has a short deadline. An answer that says "no such record" is an empty list; a lookup
that could not be answered (timeout, server failure, no server reachable) raises
:class:`DnsTempError`, which the checks report as ``temperror``: never a crash.

The checks depend only on :class:`DnsLookup`, the two coroutines they call, so that their
evaluation can be tested against a table of answers; :class:`Resolver` is the real one.

Answers are cached for their TTL (dnspython's cache, "no such record" included). A lookup that
failed is remembered for a few seconds too (RFC 2308, section 7, allows up to five minutes): a
burst of mail from a domain whose DNS is broken, or with no name server reachable, then asks
once rather than waiting out the timeout for every message.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import dns.asyncresolver
import dns.exception
import dns.name
import dns.nameserver
import dns.resolver

from gateway.config import Config, Section

__all__ = ["DnsConfig", "DnsLookup", "DnsTempError", "Resolver", "parse_dns", "resolver_for"]


@dataclass(frozen=True)
class DnsConfig:
    # (address, port) pairs; empty means the system's resolvers (/etc/resolv.conf).
    nameservers: tuple[tuple[str, int], ...] = ()
    timeout: float = 2.0


def _nameserver(value: str) -> tuple[str, int]:
    """``"127.0.0.1"``, ``"127.0.0.1:5353"``, ``"::1"`` or ``"[::1]:5353"`` -> (address, port)."""
    host, port = value, 53
    if value.startswith("["):
        host, sep, rest = value[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError
        port = int(rest[1:]) if rest else 53
    elif value.count(":") == 1:
        host, _, p = value.partition(":")
        port = int(p)
    ipaddress.ip_address(host)
    if not 1 <= port <= 65535:
        raise ValueError
    return host, port


def parse_dns(s: Section) -> DnsConfig:
    servers = []
    for i, item in enumerate(s.str_list("nameservers", ())):
        try:
            servers.append(_nameserver(item))
        except ValueError:
            s.problem(f"nameservers[{i}]",
                      f'"{item}" is not a name server address like "127.0.0.1" or "127.0.0.1:5353"')
    cfg = DnsConfig(
        nameservers=tuple(servers),
        timeout=s.number("timeout", 2.0, minimum=0.1, maximum=30),
    )
    s.finish()
    return cfg


# How long a failed lookup is answered from memory, and how many such failures are kept.
FAILURE_SECONDS = 10.0
MAX_FAILURES = 2000


class DnsTempError(Exception):
    """The lookup could not be answered now; trying later may work."""


class DnsLookup(Protocol):
    """What the checks ask of DNS (answers as text, as :meth:`Resolver.query` gives them)."""

    async def query(self, name: str, rdtype: str) -> list[str]: ...

    async def txt(self, name: str) -> list[str]: ...


def _qname(name: str) -> dns.name.Name:
    """The absolute name, label by label: SPF targets may hold any visible character, and a
    backslash in one is a character, not the start of a zone-file escape."""
    if name.isascii():
        labels = name[:-1].split(".") if name.endswith(".") else name.split(".")
        return dns.name.Name([label.encode("ascii") for label in labels] + [b""])
    return dns.name.from_text(name)


class Resolver:
    """Thin wrapper around dnspython's async resolver: lists of strings in, lists of strings out."""

    def __init__(self, cfg: DnsConfig, *, clock: Callable[[], float] = time.monotonic):
        self.cfg = cfg
        self._clock = clock
        self._failures: dict[tuple[str, str], tuple[float, str]] = {}  # -> (until, why)
        if cfg.nameservers:
            r = dns.asyncresolver.Resolver(configure=False)
            r.nameservers = [dns.nameserver.Do53Nameserver(host, port)
                             for host, port in cfg.nameservers]
        else:
            r = dns.asyncresolver.Resolver()
        r.timeout = cfg.timeout
        r.lifetime = cfg.timeout
        r.retry_servfail = False
        r.cache = dns.resolver.LRUCache(2000)
        self._r = r

    async def query(self, name: str, rdtype: str) -> list[str]:
        """The records of one type as text; [] when the name or the type does not exist."""
        try:
            qname = _qname(name)
        except (dns.exception.DNSException, UnicodeError, ValueError):
            return []
        key = (qname.to_text().lower(), rdtype)
        failed = self._failures.get(key)
        if failed is not None:
            if self._clock() < failed[0]:
                raise DnsTempError(failed[1])
            del self._failures[key]
        try:
            answer = await self._r.resolve(qname, rdtype, search=False, raise_on_no_answer=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except (dns.exception.Timeout, dns.resolver.NoNameservers,
                dns.resolver.NoResolverConfiguration, dns.resolver.LifetimeTimeout) as e:
            raise self._failed(key, f"DNS lookup of {name} {rdtype} failed: "
                                    f"{type(e).__name__}") from e
        except dns.exception.DNSException as e:
            raise self._failed(key, f"DNS lookup of {name} {rdtype} failed: {e}") from e
        if answer.rrset is None:
            return []
        if rdtype == "TXT":
            return [b"".join(r.strings).decode("utf-8", "replace") for r in answer.rrset]
        if rdtype == "MX":
            ordered = sorted(answer.rrset, key=lambda r: r.preference)
            # a null MX (RFC 7505) comes back as "."
            return [r.exchange.to_text(omit_final_dot=True) for r in ordered]
        if rdtype in ("A", "AAAA"):
            return [r.address for r in answer.rrset]
        if rdtype == "PTR":
            return [r.target.to_text(omit_final_dot=True) for r in answer.rrset]
        return [r.to_text() for r in answer.rrset]

    def _failed(self, key: tuple[str, str], why: str) -> DnsTempError:
        if len(self._failures) >= MAX_FAILURES:
            del self._failures[next(iter(self._failures))]  # the oldest
        self._failures[key] = (self._clock() + FAILURE_SECONDS, why)
        return DnsTempError(why)

    async def txt(self, name: str) -> list[str]:
        return await self.query(name, "TXT")

    async def addresses(self, name: str) -> list[str]:
        """A and AAAA records together."""
        return (await self.query(name, "A")) + (await self.query(name, "AAAA"))


def resolver_for(config: Config) -> Resolver:
    return Resolver(config.section(DnsConfig))
