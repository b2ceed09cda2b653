"""What the resolver remembers, against the real DNS server on loopback: answers for their TTL,
and a failed lookup for a few seconds, so a burst of mail from a domain with broken DNS asks
once rather than once a message."""

from __future__ import annotations

import pytest

from gateway.authcheck.resolver import (
    FAILURE_SECONDS,
    DnsConfig,
    DnsTempError,
    Resolver,
    _nameserver,
)
from tests.fixtures_dns import DnsServer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _resolver(server: DnsServer, clock: Clock) -> Resolver:
    return Resolver(DnsConfig(nameservers=(_nameserver(server.address),), timeout=1.0),
                    clock=clock)


def _asked(server: DnsServer, name: str) -> int:
    return sum(1 for q in server.queries if q == (name, "TXT"))


async def test_a_failed_lookup_is_remembered_for_a_few_seconds(dns_server: DnsServer) -> None:
    clock = Clock()
    r = _resolver(dns_server, clock)
    dns_server.add("broken.test", "TXT", "v=spf1 -all")
    dns_server.fail("broken.test")
    for _ in range(3):
        with pytest.raises(DnsTempError, match="broken.test TXT failed"):
            await r.txt("broken.test")
    assert _asked(dns_server, "broken.test.") == 1
    dns_server.fail("broken.test", failing=False)
    clock.now += FAILURE_SECONDS - 0.5
    with pytest.raises(DnsTempError):
        await r.txt("broken.test")
    clock.now += 1
    assert await r.txt("broken.test") == ["v=spf1 -all"]
    assert _asked(dns_server, "broken.test.") == 2


async def test_one_failing_name_does_not_fail_another(dns_server: DnsServer) -> None:
    r = _resolver(dns_server, Clock())
    dns_server.add("fine.test", "TXT", "v=spf1 +all")
    dns_server.add("broken.test", "TXT", "v=spf1 -all")
    dns_server.fail("broken.test")
    with pytest.raises(DnsTempError):
        await r.txt("broken.test")
    assert await r.txt("fine.test") == ["v=spf1 +all"]
    with pytest.raises(DnsTempError):  # another type of the same name is asked, not assumed
        await r.query("broken.test", "A")
    assert ("broken.test.", "A") in dns_server.queries


async def test_answers_and_no_such_name_are_cached_for_their_ttl(dns_server: DnsServer) -> None:
    r = _resolver(dns_server, Clock())
    dns_server.add("a.test", "TXT", "v=spf1 ip4:192.0.2.1 -all")
    for _ in range(3):
        assert await r.txt("a.test") == ["v=spf1 ip4:192.0.2.1 -all"]
        assert await r.txt("missing.test") == []
    assert _asked(dns_server, "a.test.") == 1
    assert _asked(dns_server, "missing.test.") == 1
