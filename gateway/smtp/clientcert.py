"""Trusting a relaying client by the name on its TLS client certificate (``[outbound]
trusted_client_certificates``), for hosted mailboxes such as Microsoft 365 whose servers share
address ranges with every other tenant: an address says nothing about whose mail it is, a
certificate checked against the CAs in ``client_ca_file`` does.

Pure functions of the certificate as ``ssl.SSLObject.getpeercert()`` gives it. That dict is
only filled in for a certificate that was verified; an absent certificate (``None``) or an
unverified one (``{}``) never matches.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["certificate_names", "name_matches", "trusted_certificate_name"]


def _clean(name: str) -> str:
    return name.strip().rstrip(".").lower()


def certificate_names(cert: Mapping[str, Any] | None) -> tuple[str, ...]:
    """The DNS names a verified certificate is for: its subjectAltName DNS entries, or its
    common name(s) when it has none (as RFC 6125 says, a SAN list replaces the CN)."""
    if not cert:
        return ()
    dns = tuple(_clean(v) for k, v in cert.get("subjectAltName", ()) if k == "DNS")
    if dns:
        return dns
    return tuple(_clean(v) for rdn in cert.get("subject", ()) for k, v in rdn
                 if k == "commonName")


def name_matches(cert_name: str, wanted: str) -> bool:
    """A name on the certificate against a name the IT volunteer listed: equal (ignoring case),
    or a leading ``*.`` in the certificate standing for exactly one label of the listed name
    (``*.protection.outlook.com`` covers ``mail.protection.outlook.com``, not
    ``protection.outlook.com`` nor ``a.mail.protection.outlook.com``)."""
    cert_name, wanted = _clean(cert_name), _clean(wanted)
    if not cert_name or not wanted:
        return False
    if cert_name == wanted:
        return "*" not in cert_name
    if not cert_name.startswith("*."):
        return False
    rest = cert_name[2:]
    if "*" in rest or "." not in rest:  # never "*.com"
        return False
    label, dot, tail = wanted.partition(".")
    return bool(label) and bool(dot) and tail == rest


def trusted_certificate_name(cert: Mapping[str, Any] | None,
                             trusted: Iterable[str]) -> str | None:
    """The listed name a verified client certificate matches, or None."""
    names = certificate_names(cert)
    for wanted in trusted:
        if any(name_matches(n, wanted) for n in names):
            return wanted
    return None
