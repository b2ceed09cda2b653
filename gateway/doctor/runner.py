"""All the doctor's checks of one config, the network ones at the same time, each under its own
deadline; the results come back in a fixed order (DNS, TLS, clamd, next hops, this machine)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from datetime import datetime, timezone

from gateway.adapters.dkim_signing import KeyError_
from gateway.assembly import chain_names
from gateway.authcheck.resolver import DnsConfig, Resolver
from gateway.config import Config
from gateway.doctor import domains, hops, machine, scanner, tls
from gateway.doctor.results import Result, bounded, problem, warning
from gateway.doctor.settings import DoctorConfig
from gateway.filters.antivirus import ClamavConfig
from gateway.filters.dkim import DkimConfig, signing_keys

__all__ = ["DEFAULT_DEADLINE", "diagnose"]

DEFAULT_DEADLINE = 15.0  # seconds for each check, the network ones included


async def _dns(config: Config, deadline: float) -> list[Result]:
    """The gateway's address first (MX and SPF are checked against it), then every domain's
    MX, SPF and DMARC and each DKIM key, all at once."""
    dns = Resolver(config.section(DnsConfig))
    gw = config.gateway
    configured = [str(a) for a in config.section(DoctorConfig).public_addresses]
    found: list[domains.GatewayAddress] = []

    async def address() -> Result:
        where, result = await domains.find_gateway_address(dns, configured, gw.hostname)
        found.append(where)
        return result

    out = await bounded("dns.address", gw.hostname, address(), deadline)
    where = found[0] if found else domains.GatewayAddress()
    outbound = config.outbound.deliver_to
    smarthost = outbound.host if outbound.kind == "smtp" else ""
    dkim = config.section(DkimConfig)
    notes: list[Result] = []  # about the key itself, after the domains' results
    try:
        _, keys = signing_keys(dkim, gw.council_domains)
    except (KeyError_, OSError) as e:
        notes.append(problem("dns.dkim", "[dkim]", f"The DKIM key cannot be read ({e}).",
                             "Check [dkim] private_key_file (council-gateway check-config)."))
        keys = ()
    if not keys and dkim.private_key_file is None:
        notes.append(warning("dns.dkim", "[dkim]",
                             "Outgoing mail is not DKIM-signed ([dkim] private_key_file is not "
                             "set), so receivers cannot tell it really comes from the council.",
                             "Make a key with: council-gateway dkim-keygen, publish the record "
                             "it prints, and set [dkim] private_key_file."))
    checks: list[tuple[str, str, Awaitable[Result | Sequence[Result]]]] = []
    for domain in gw.council_domains:
        checks += [
            ("dns.mx", domain, domains.check_mx(dns, domain, where, gw.hostname)),
            ("dns.spf", domain, domains.check_spf_record(dns, domain, where, gw.hostname,
                                                         smarthost)),
            ("dns.dmarc", domain, domains.check_dmarc(dns, domain)),
        ]
    files = (dkim.private_key_file, dkim.ed25519_private_key_file)
    for key, key_file in zip(keys, files, strict=False):
        checks.append(("dns.dkim", f"{key.selector}._domainkey.{key.domain}",
                       domains.check_dkim(dns, key, f'[dkim] "{key_file}"')))
    for results in await asyncio.gather(*(bounded(c, s, w, deadline) for c, s, w in checks)):
        out += results
    return out + notes


async def _next_hop(config: Config, side: str, now: datetime, deadline: float) -> list[Result]:
    listener = config.listener(side)
    hop = listener.deliver_to
    if hop.kind == "maildir":
        assert hop.path is not None
        return [await asyncio.to_thread(hops.check_maildir, side, hop.path)]
    # Each step gets most of the deadline, so the probe says which step hung before the
    # deadline ends the whole check.
    probe = await hops.probe_smtp(hop, listener, config.gateway.hostname,
                                  max(deadline - 1, 0.5))
    return hops.assess_smtp(side, hop, listener, probe, now, config.gateway.max_message_size)


async def diagnose(config: Config, *, deadline: float = DEFAULT_DEADLINE,
                   now: datetime | None = None) -> list[Result]:
    """Every check of ``config``'s environment, in order; never raises, never hangs."""
    now = now or datetime.now(timezone.utc)
    gw = config.gateway
    used = any("antivirus" in chain_names(config, side) for side in ("inbound", "outbound"))
    wait = min(5.0, deadline)

    groups: list[tuple[str, str, Awaitable[Result | Sequence[Result]]]] = [
        ("dns", "DNS", _dns(config, deadline)),
        ("tls", "[tls]", asyncio.to_thread(tls.check_tls, config.tls, gw.hostname, now)),
        ("clamd", "[clamav]", scanner.check_clamd(config.section(ClamavConfig), now.date(),
                                                  used=used, wait=wait)),
        *(("next-hop", f"{side}: {config.listener(side).deliver_to}",
           _next_hop(config, side, now, deadline)) for side in ("inbound", "outbound")),
        *(("listen.port", f"{side}: {':'.join(map(str, listen))}",
           machine.check_listen(side, listen, wait))
          for side in ("inbound", "outbound")
          if (listen := config.listener(side).listen) is not None),
        ("files", "files", asyncio.to_thread(machine.permissions, config)),
        ("disk", "disk", asyncio.to_thread(machine.disk_space, [
            ("the quarantine", config.quarantine.path),
            ("the audit log", gw.audit_log.parent)])),
    ]
    # The DNS group bounds each of its own look-ups; this is only its backstop.
    limits = [deadline * 2 + 1 if area == "dns" else deadline + 1 for area, _, _ in groups]
    found = await asyncio.gather(*(bounded(area, subject, work, limit)
                                   for (area, subject, work), limit in zip(groups, limits,
                                                                           strict=True)))
    return [r for results in found for r in results]
