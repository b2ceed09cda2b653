"""The sections every gateway has: [gateway], [inbound], [outbound], [tls] and [quarantine],
and :class:`Config`, the whole file as one frozen object."""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import idna

from gateway.config.reader import NextHop, Problem, Section

__all__ = [
    "Config",
    "canonical_domain",
    "GatewayConfig",
    "ListenerConfig",
    "QuarantineConfig",
    "TlsConfig",
    "parse_gateway",
    "parse_listener",
    "parse_quarantine",
    "parse_tls",
]

T = TypeVar("T")


@functools.lru_cache(maxsize=4096)
def canonical_domain(domain: str) -> str:
    """A domain as DNS knows it: UTS 46 mapping, A-labels, lower case; "" when it is not one.
    (Remembered: every recipient is compared with the council's domains.)"""
    try:
        return idna.encode(domain, uts46=True).decode("ascii").lower()
    except (idna.IDNAError, UnicodeError):
        return ""


@dataclass(frozen=True)
class GatewayConfig:
    council_domains: tuple[str, ...]
    hostname: str
    max_message_size: int
    audit_log: Path
    max_connections: int = 100  # each side's default pool
    command_timeout: float = 300.0
    data_timeout: float = 60.0  # between two lines of one message
    max_parts: int = 1000  # MIME parts a message may have to be checked
    max_depth: int = 20  # how deep its multiparts may nest
    max_text_size: int = 8 * 1024 * 1024  # bytes of body text (plain and HTML) it may have
    max_header_field: int = 64 * 1024  # bytes of one header field (half for From, To ...)
    max_header_size: int = 256 * 1024  # bytes of its header fields, its parts' included
    session_lifetime: float = 3600.0
    filter_timeout: float = 120.0
    shutdown_grace: float = 30.0
    auth_failure_delay: float = 2.0
    # Turn mail away for now (451) rather than pass it on when the audit log cannot be written.
    audit_required: bool = True
    spool_threshold: int = 1024 * 1024  # a message's bytes beyond this wait in a file
    spool_dir: Path | None = None  # None: the system's temporary folder

    def is_council_address(self, address: str) -> bool:
        """Compared after IDNA mapping (UTS 46), so look-alike spellings of a council domain
        are read as what a mail server would read them as, not as a byte string."""
        return canonical_domain(address.rpartition("@")[2]) in self.council_domains


@dataclass(frozen=True)
class ListenerConfig:
    listen: tuple[str, int] | None  # None: this side does not listen (listen = "")
    deliver_to: NextHop
    filters: tuple[str, ...] | None  # None: the side's full default chain
    trusted_networks: tuple[Any, ...] = ()
    users_file: Path | None = None
    deliver_user: str = ""
    deliver_password_file: Path | None = None
    deliver_tls_verify: bool = True
    deliver_ca_file: Path | None = None
    deliver_timeout: float = 60.0
    deliver_data_timeout: float = 600.0
    max_connections: int = 100
    max_connections_per_address: int = 10  # an IPv4 address or an IPv6 /64
    # Clients on this machine may log in without STARTTLS (nobody can listen in on loopback).
    loopback_auth_without_tls: bool = True
    # Inbound: local parts the MX side takes although they look like routes (regex, whole part).
    allowed_local_parts: tuple[re.Pattern[str], ...] = ()
    # Outbound: where login lockouts are kept, so "council-gateway user unlock" can end one.
    login_locks_file: Path | None = None
    # Outbound: relaying clients trusted by their verified TLS client certificate's name (a
    # hosted mailbox's servers), and the CAs that verify it (None: the system's).
    trusted_client_certificates: tuple[str, ...] = ()
    client_ca_file: Path | None = None


@dataclass(frozen=True)
class TlsConfig:
    cert_file: Path | None = None
    key_file: Path | None = None

    @property
    def enabled(self) -> bool:
        return self.cert_file is not None and self.key_file is not None


@dataclass(frozen=True)
class QuarantineConfig:
    path: Path = Path("quarantine")
    retention_days: int = 30
    digest_to: tuple[str, ...] = ()
    digest_time: str = "08:00"


@dataclass(frozen=True)
class Config:
    """The validated configuration. Sections owned by other modules (a filter's own section,
    [senders], [review] ...) are in ``sections``, typed: ``config.section(ClamavConfig)``."""

    gateway: GatewayConfig
    inbound: ListenerConfig
    outbound: ListenerConfig
    tls: TlsConfig
    quarantine: QuarantineConfig
    sections: Mapping[str, object] = field(default_factory=dict, repr=False)
    source: str = "<embedded>"
    # Old spellings that still work, each with the new one (check-config shows them).
    notes: tuple[Problem, ...] = ()

    def section(self, kind: type[T]) -> T:
        for value in self.sections.values():
            if type(value) is kind:
                return value
        raise KeyError(f"no section of type {kind.__name__} in this configuration")

    def listener(self, side: str) -> ListenerConfig:
        return self.inbound if side == "inbound" else self.outbound


def parse_gateway(s: Section) -> GatewayConfig:
    domains = tuple(d.lower().strip() for d in s.str_list("council_domains", ()))
    if not domains:
        s.problem("council_domains", 'must name at least one domain, e.g. ["stanion-pc.gov.uk"]')
    for i, d in enumerate(domains):
        if not re.match(r"^(?=.{1,253}$)([a-z0-9-]{1,63}\.)+[a-z0-9-]{2,63}$", d):
            s.problem(f"council_domains[{i}]", f'"{d}" is not a domain name')
    cfg = GatewayConfig(
        council_domains=domains,
        hostname=s.text("hostname", "localhost") or "localhost",
        max_message_size=s.size("max_message_size", "25MiB"),
        audit_log=s.path("audit_log", "logs/audit.jsonl"),
        max_connections=s.integer("max_connections", 100, minimum=1),
        command_timeout=s.number("command_timeout", 300.0, minimum=1),
        data_timeout=s.number("data_timeout", 60.0, minimum=1),
        max_parts=s.integer("max_parts", 1000, minimum=10),
        max_depth=s.integer("max_depth", 20, minimum=3, maximum=500),
        max_text_size=s.size("max_text_size", "8MiB"),
        max_header_field=s.size("max_header_field", "64KiB"),
        max_header_size=s.size("max_header_size", "256KiB"),
        session_lifetime=s.number("session_lifetime", 3600.0, minimum=1),
        filter_timeout=s.number("filter_timeout", 120.0, minimum=1),
        shutdown_grace=s.number("shutdown_grace", 30.0, minimum=0),
        auth_failure_delay=s.number("auth_failure_delay", 2.0, minimum=0),
        audit_required=s.flag("audit_required", True),
        spool_threshold=s.size("spool_threshold", "1MiB"),
        spool_dir=s.optional_path("spool_dir"),
    )
    for key, least in (("max_header_field", 8 * 1024), ("max_header_size", 64 * 1024)):
        if getattr(cfg, key) < least:
            s.problem(key, f"must be at least {least // 1024}KiB: ordinary mail has fields and "
                      "headers that long")
    s.finish()
    return cfg


def _patterns(s: Section, name: str) -> tuple[re.Pattern[str], ...]:
    out = []
    for i, text in enumerate(s.str_list(name, ())):
        try:
            out.append(re.compile(text, re.IGNORECASE))
        except re.error as e:
            s.problem(f"{name}[{i}]", f"is not a regular expression Python understands: {e}")
    return tuple(out)


def _certificate_names(s: Section, name: str) -> tuple[str, ...]:
    out = []
    for i, text in enumerate(s.str_list(name, ())):
        value = text.strip().rstrip(".").lower()
        if "*" in value:
            s.problem(f"{name}[{i}]", f'"{text}" has a "*": list the exact name the client '
                                      "presents (a wildcard in the certificate itself is "
                                      "understood)")
        elif not re.match(r"^(?=.{1,253}$)([a-z0-9_-]{1,63}\.)+[a-z0-9-]{2,63}$", value):
            s.problem(f"{name}[{i}]", f'"{text}" is not a host name like '
                                      '"mail.protection.outlook.com"')
        else:
            out.append(value)
    return tuple(out)


def _ca_file(s: Section, name: str) -> Path | None:
    path = s.optional_path(name, "")
    if path is None:
        return None
    if not path.is_file():
        s.problem(name, f'the file "{path}" does not exist (leave it "" to use the system\'s '
                        "certificate authorities)")
        return path
    import ssl

    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_verify_locations(cafile=path)
    except (ssl.SSLError, OSError) as e:
        s.problem(name, f'"{path}" holds no CA certificate in PEM form ({e})')
    return path


def parse_listener(s: Section, side: str, known_filters: Sequence[str],
                   max_connections: int = 100) -> ListenerConfig:
    default_listen = "127.0.0.1:2525" if side == "inbound" else "127.0.0.1:2587"
    default_hop = "maildir:mailbox" if side == "inbound" else "maildir:outbox"
    filters = s.str_list("filters") if s.has("filters") else None
    if filters is not None:
        known = list(known_filters)
        for i, name in enumerate(filters):
            if name not in known:
                close = difflib.get_close_matches(name, known, n=1)
                hint = f'; did you mean "{close[0]}"?' if close else ""
                s.problem(f"filters[{i}]", f'"{name}" is not a filter the {side} side has{hint}')
        dupes = sorted({n for n in filters if filters.count(n) > 1})
        if dupes:
            s.problem("filters", f"lists {', '.join(dupes)} more than once")
    cfg = ListenerConfig(
        listen=(None if s.has("listen") and s.text("listen", default_listen) == ""
                else s.hostport("listen", default_listen)),
        deliver_to=s.next_hop("deliver_to", default_hop),
        filters=filters,
        trusted_networks=(
            s.networks("trusted_networks", ("127.0.0.0/8", "::1/128"))
            if side == "outbound" else ()
        ),
        users_file=s.optional_path("users_file", "config/users") if side == "outbound" else None,
        deliver_user=s.text("deliver_user", ""),
        deliver_password_file=s.optional_path("deliver_password_file", ""),
        deliver_tls_verify=s.flag("deliver_tls_verify", True),
        deliver_ca_file=s.optional_path("deliver_ca_file", ""),
        deliver_timeout=s.number("deliver_timeout", 60.0, minimum=1),
        deliver_data_timeout=s.number("deliver_data_timeout", 600.0, minimum=1),
        max_connections=s.integer("max_connections", max_connections, minimum=1),
        max_connections_per_address=s.integer(
            "max_connections_per_address", 20 if side == "inbound" else 10, minimum=1),
        loopback_auth_without_tls=(
            s.flag("loopback_auth_without_tls", True) if side == "outbound" else False),
        allowed_local_parts=_patterns(s, "allowed_local_parts") if side == "inbound" else (),
        login_locks_file=(s.optional_path("login_locks_file", "state/login-locks.json")
                          if side == "outbound" else None),
        trusted_client_certificates=(
            _certificate_names(s, "trusted_client_certificates") if side == "outbound" else ()),
        client_ca_file=(_ca_file(s, "client_ca_file") if side == "outbound" else None),
    )
    if cfg.deliver_user and cfg.deliver_password_file is None:
        s.problem("deliver_password_file", "is needed when deliver_user is set")
    s.finish()
    return cfg


def parse_tls(s: Section) -> TlsConfig:
    cert = s.optional_path("cert_file")
    key = s.optional_path("key_file")
    if bool(cert) != bool(key):
        s.problem("cert_file" if not cert else "key_file",
                  "cert_file and key_file go together: set both or neither")
    for name, p in (("cert_file", cert), ("key_file", key)):
        if p is not None and not p.is_file():
            s.problem(name, f'the file "{p}" does not exist')
    if cert is not None and key is not None and cert.is_file() and key.is_file():
        # Load the pair as the listeners will, so a key that does not belong to the
        # certificate is named here, with both files, not later in an OpenSSL message. The
        # empty passphrase keeps OpenSSL from asking for one on the terminal.
        import ssl

        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key,
                                                                    password=lambda: b"")
        except ssl.SSLError as e:
            if e.reason == "KEY_VALUES_MISMATCH":
                s.problem("key_file", f'the key "{key}" does not match the certificate "{cert}": '
                                      "use the key the certificate was issued for")
            else:
                try:
                    ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cert)
                except ssl.SSLError:
                    s.problem("cert_file", f'"{cert}" holds no certificate in PEM form to go '
                                           f'with the key "{key}"')
                else:
                    s.problem("key_file", f'"{key}" holds no private key in PEM form (without '
                                          f'a passphrase) to go with the certificate "{cert}"')
        except OSError as e:
            s.problem("cert_file", f'the certificate "{cert}" and the key "{key}" cannot be '
                                   f"read: {e.strerror or e}")
    s.finish()
    return TlsConfig(cert, key) if cert and key else TlsConfig()


def parse_quarantine(s: Section) -> QuarantineConfig:
    digest_time = s.text("digest_time", "08:00")
    if not re.match(r"^([01]\d|2[0-3]):[0-5]\d$", digest_time):
        s.problem("digest_time", f'"{digest_time}" is not a time of day like "08:00"')
        digest_time = "08:00"
    cfg = QuarantineConfig(
        path=s.path("path", "quarantine"),
        retention_days=s.integer("retention_days", 30, minimum=1),
        digest_to=s.str_list("digest_to", ()),
        digest_time=digest_time,
    )
    s.finish()
    return cfg


