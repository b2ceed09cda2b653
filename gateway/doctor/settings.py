"""The ``[doctor]`` section: what the doctor cannot find out by itself."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from gateway.config import Section

__all__ = ["DoctorConfig", "IPAddress", "parse_doctor"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class DoctorConfig:
    # The address(es) other mail servers reach the gateway at (behind NAT, not the machine's
    # own); empty: what [gateway] hostname resolves to.
    public_addresses: tuple[IPAddress, ...] = ()


def parse_doctor(s: Section) -> DoctorConfig:
    """``[doctor] public_address``: one address (``"203.0.113.7"``) or a list of them."""
    addresses: list[IPAddress] = []
    single = isinstance(s.raw.get("public_address"), str)
    for i, text in enumerate(s.str_list("public_address", ())):
        try:
            addresses.append(ipaddress.ip_address(text.strip()))
        except ValueError:
            s.problem("public_address" if single else f"public_address[{i}]",
                      f'"{text}" is not an IP address like "203.0.113.7" or "2001:db8::25"')
    s.finish()
    return DoctorConfig(tuple(dict.fromkeys(addresses)))
