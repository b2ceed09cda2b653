"""The gateway's configuration: one TOML file, loaded and validated once into frozen dataclasses.

Every problem is reported with its key path and, where it can be found, its line, in words the
IT volunteer understands. Nothing outside this module reads the TOML itself.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

__all__ = [
    "ConfigError",
    "Problem",
    "Config",
    "GatewayConfig",
    "ListenerConfig",
    "NextHop",
    "TlsConfig",
    "QuarantineConfig",
    "Section",
    "load_config",
    "parse_config",
    "parse_size",
    "DEFAULT_CONFIG_PATH",
]

DEFAULT_CONFIG_PATH = Path("config/gateway.toml")


@dataclass(frozen=True)
class Problem:
    key: str  # dotted key path, e.g. "outbound.listen"
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f" (line {self.line})" if self.line else ""
        return f"{self.key}{where}: {self.message}"


class ConfigError(Exception):
    def __init__(self, path: str, problems: list[Problem]):
        self.source = path
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


# --------------------------------------------------------------------------- value helpers

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|K|KB|KIB|M|MB|MIB|G|GB|GIB)?\s*$", re.I)
_SIZE_UNITS = {
    None: 1, "B": 1, "K": 1024, "KB": 1000, "KIB": 1024, "M": 1024**2, "MB": 1000**2,
    "MIB": 1024**2, "G": 1024**3, "GB": 1000**3, "GIB": 1024**3,
}


def parse_size(value: str | int) -> int:
    """``"25MiB"`` -> 26214400. Raises ValueError with a readable message."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value <= 0:
            raise ValueError("must be more than 0")
        return value
    m = _SIZE_RE.match(str(value))
    if not m:
        raise ValueError(f'"{value}" is not a size; write it like "25MiB", "500KB" or 1048576')
    unit = m.group(2).upper() if m.group(2) else None
    size = int(float(m.group(1)) * _SIZE_UNITS[unit])
    if size <= 0:
        raise ValueError("must be more than 0")
    return size


def parse_hostport(value: str) -> tuple[str, int]:
    """``"127.0.0.1:2525"`` or ``"[::1]:2525"`` -> (host, port)."""
    m = re.match(r"^\[([0-9A-Fa-f:.]+)\]:(\d+)$", value) or re.match(r"^([^:\[\]]+):(\d+)$", value)
    if not m:
        raise ValueError(f'"{value}" is not host:port, e.g. "127.0.0.1:2525"')
    port = int(m.group(2))
    if not 0 <= port <= 65535:
        raise ValueError(f'"{value}" is not a valid port (ports go from 1 to 65535)')
    return m.group(1), port


@dataclass(frozen=True)
class NextHop:
    """Where a side hands mail on: a Maildir folder or an SMTP server."""

    kind: str  # "maildir" | "smtp"
    path: Path | None = None
    host: str = ""
    port: int = 25
    tls: str = "none"  # "none" | "starttls" | "implicit"

    def __str__(self) -> str:
        if self.kind == "maildir":
            return f"maildir:{self.path}"
        scheme = {"none": "smtp", "starttls": "smtp+starttls", "implicit": "smtps"}[self.tls]
        return f"{scheme}://{self.host}:{self.port}"


def parse_next_hop(value: str) -> NextHop:
    if value.startswith("maildir:"):
        path = value[len("maildir:"):].strip()
        if not path:
            raise ValueError('"maildir:" needs a folder, e.g. "maildir:mailbox"')
        return NextHop(kind="maildir", path=Path(path))
    parts = urlsplit(value)
    tls = {"smtp": "none", "smtp+starttls": "starttls", "smtps": "implicit"}.get(parts.scheme)
    if tls is None or not parts.hostname:
        raise ValueError(
            f'"{value}" is not a next hop; use "maildir:FOLDER", "smtp://host:port", '
            '"smtp+starttls://host:port" or "smtps://host:port"'
        )
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f'"{value}" is not a valid port (ports go from 1 to 65535)') from None
    if port is None:
        port = {"none": 25, "starttls": 587, "implicit": 465}[tls]
    return NextHop(kind="smtp", host=parts.hostname, port=port, tls=tls)


class Section:
    """Reads one TOML table, collecting problems instead of stopping at the first."""

    def __init__(self, raw: Any, path: str, problems: list[Problem]):
        self.prefix = path
        self.problems = problems
        self.seen: set[str] = set()
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            self.problem("", f"must be a table like [{path}], not a single value")
            raw = {}
        self.raw: dict[str, Any] = raw

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}" if name else self.prefix

    def problem(self, name: str, message: str) -> None:
        self.problems.append(Problem(self.key(name), message))

    def sub(self, name: str) -> Section:
        self.seen.add(name)
        return Section(self.raw.get(name), self.key(name), self.problems)

    def has(self, name: str) -> bool:
        return name in self.raw

    def _get(self, name: str, default: Any, kinds: tuple[type, ...], what: str) -> Any:
        self.seen.add(name)
        if name not in self.raw:
            return default
        value = self.raw[name]
        if isinstance(value, bool) and bool not in kinds:
            self.problem(name, f"must be {what}, not true/false")
            return default
        if not isinstance(value, kinds):
            self.problem(name, f"must be {what}, not {_describe(value)}")
            return default
        return value

    def text(self, name: str, default: str = "") -> str:
        return self._get(name, default, (str,), 'text in quotes, e.g. "example"')

    def flag(self, name: str, default: bool) -> bool:
        return self._get(name, default, (bool,), "true or false")

    def integer(self, name: str, default: int, minimum: int | None = None,
            maximum: int | None = None) -> int:
        value = self._get(name, default, (int,), "a whole number")
        return self._range(name, value, default, minimum, maximum)

    def number(self, name: str, default: float, minimum: float | None = None,
               maximum: float | None = None) -> float:
        value = float(self._get(name, default, (int, float), "a number"))
        return self._range(name, value, default, minimum, maximum)

    def _range(self, name: str, value: Any, default: Any, minimum: Any, maximum: Any) -> Any:
        if minimum is not None and value < minimum:
            self.problem(name, f"{value} is too small; the smallest allowed is {minimum}")
            return default
        if maximum is not None and value > maximum:
            self.problem(name, f"{value} is too large; the largest allowed is {maximum}")
            return default
        return value

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.text(name, default)
        if value not in choices:
            options = ", ".join(f'"{c}"' for c in choices)
            self.problem(name, f'"{value}" is not one of the allowed values: {options}')
            return default
        return value

    def str_list(self, name: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        value = self._get(name, None, (list, str), 'a list in brackets, e.g. ["a", "b"]')
        if value is None:
            return default
        if isinstance(value, str):
            value = [value]
        out = []
        for i, item in enumerate(value):
            if not isinstance(item, str):
                self.problem(f"{name}[{i}]", f"must be text in quotes, not {_describe(item)}")
            else:
                out.append(item)
        return tuple(out)

    def path(self, name: str, default: str) -> Path:
        return Path(self.text(name, default))

    def optional_path(self, name: str, default: str = "") -> Path | None:
        value = self.text(name, default)
        return Path(value) if value else None

    def size(self, name: str, default: str) -> int:
        value = self._get(name, default, (str, int), 'a size such as "25MiB"')
        try:
            return parse_size(value)
        except ValueError as e:
            self.problem(name, str(e))
            return parse_size(default)

    def hostport(self, name: str, default: str) -> tuple[str, int]:
        value = self.text(name, default)
        try:
            host, port = parse_hostport(value)
        except ValueError as e:
            self.problem(name, str(e))
            return parse_hostport(default)
        return host, port  # port 0 picks a free port (used by the tests)

    def next_hop(self, name: str, default: str) -> NextHop:
        value = self.text(name, default)
        try:
            return parse_next_hop(value)
        except ValueError as e:
            self.problem(name, str(e))
            return parse_next_hop(default)

    def networks(self, name: str, default: tuple[str, ...]) -> tuple[Any, ...]:
        nets = []
        for i, item in enumerate(self.str_list(name, default)):
            try:
                nets.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                self.problem(f"{name}[{i}]", f'"{item}" is not a network like "192.168.1.0/24"')
        return tuple(nets)

    def finish(self) -> None:
        """Report keys nobody asked for: usually a typo."""
        for name in self.raw:
            if name not in self.seen:
                close = difflib.get_close_matches(name, sorted(self.seen), n=1)
                hint = f'; did you mean "{close[0]}"?' if close else ""
                self.problem(name, f"is not a setting the gateway knows{hint}")


def _describe(value: Any) -> str:
    if isinstance(value, str):
        return f'the text "{value}"'
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return f"{value!r}"


# --------------------------------------------------------------------------- sections

@dataclass(frozen=True)
class GatewayConfig:
    council_domains: tuple[str, ...]
    hostname: str
    max_message_size: int
    audit_log: Path
    max_connections: int = 100
    command_timeout: float = 300.0
    filter_timeout: float = 120.0
    shutdown_grace: float = 30.0
    auth_failure_delay: float = 2.0

    def is_council_address(self, address: str) -> bool:
        domain = address.rpartition("@")[2].lower()
        return domain in self.council_domains


@dataclass(frozen=True)
class ListenerConfig:
    listen: tuple[str, int]
    deliver_to: NextHop
    filters: tuple[str, ...] | None  # None: the side's full default chain
    trusted_networks: tuple[Any, ...] = ()
    users_file: Path | None = None
    deliver_user: str = ""
    deliver_password_file: Path | None = None
    deliver_tls_verify: bool = True
    deliver_ca_file: Path | None = None
    deliver_timeout: float = 60.0
    # Clients on this machine may log in without STARTTLS (nobody can listen in on loopback).
    loopback_auth_without_tls: bool = True


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
    gateway: GatewayConfig
    inbound: ListenerConfig
    outbound: ListenerConfig
    tls: TlsConfig
    quarantine: QuarantineConfig
    source: str = "<embedded>"
    # The TOML as a dict, for sections owned by individual filters (read with Section).
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


# Sections read by filters and other modules register a validator here so that
# check-config reports their problems too. name -> function(Section) -> None
SECTION_VALIDATORS: dict[str, Callable[[Section], object]] = {}


SectionParser = TypeVar("SectionParser", bound=Callable[[Section], object])


def register_section(name: str) -> Callable[[SectionParser], SectionParser]:
    """Decorator: ``@register_section("clamav") def parse_clamav(s) -> ClamavConfig``."""

    def deco(fn: SectionParser) -> SectionParser:
        if name in SECTION_VALIDATORS:
            raise ValueError(f"config section {name!r} registered twice")
        SECTION_VALIDATORS[name] = fn
        return fn
    return deco


def _parse_gateway(s: Section) -> GatewayConfig:
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
        filter_timeout=s.number("filter_timeout", 120.0, minimum=1),
        shutdown_grace=s.number("shutdown_grace", 30.0, minimum=0),
        auth_failure_delay=s.number("auth_failure_delay", 2.0, minimum=0),
    )
    s.finish()
    return cfg


def _parse_listener(s: Section, side: str) -> ListenerConfig:
    default_listen = "127.0.0.1:2525" if side == "inbound" else "127.0.0.1:2587"
    default_hop = "maildir:mailbox" if side == "inbound" else "maildir:outbox"
    filters = s.str_list("filters") if s.has("filters") else None
    if filters is not None:
        from gateway.filters import known_filters  # late import: filters import config

        known = known_filters(side)
        for i, name in enumerate(filters):
            if name not in known:
                close = difflib.get_close_matches(name, known, n=1)
                hint = f'; did you mean "{close[0]}"?' if close else ""
                s.problem(f"filters[{i}]", f'"{name}" is not a filter the {side} side has{hint}')
        dupes = sorted({n for n in filters if filters.count(n) > 1})
        if dupes:
            s.problem("filters", f"lists {', '.join(dupes)} more than once")
    cfg = ListenerConfig(
        listen=s.hostport("listen", default_listen),
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
        loopback_auth_without_tls=(
            s.flag("loopback_auth_without_tls", True) if side == "outbound" else False),
    )
    if cfg.deliver_user and cfg.deliver_password_file is None:
        s.problem("deliver_password_file", "is needed when deliver_user is set")
    s.finish()
    return cfg


def _parse_tls(s: Section) -> TlsConfig:
    cert = s.optional_path("cert_file")
    key = s.optional_path("key_file")
    if bool(cert) != bool(key):
        s.problem("cert_file" if not cert else "key_file",
                  "cert_file and key_file go together: set both or neither")
    for name, p in (("cert_file", cert), ("key_file", key)):
        if p is not None and not p.is_file():
            s.problem(name, f'the file "{p}" does not exist')
    s.finish()
    return TlsConfig(cert, key) if cert and key else TlsConfig()


def _parse_quarantine(s: Section) -> QuarantineConfig:
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


_CORE_SECTIONS = ("gateway", "inbound", "outbound", "tls", "quarantine")


def parse_config(text: str, source: str = "<text>") -> Config:
    """Parse and validate TOML text. Raises ConfigError listing every problem."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        line = None
        m = re.search(r"line (\d+)", str(e))
        if m:
            line = int(m.group(1))
        raise ConfigError(source, [Problem("(file)", f"is not valid TOML: {e}", line)]) from None

    # Modules with a config section register it on import.
    import gateway.filters  # noqa: F401
    import gateway.review.settings  # noqa: F401

    problems: list[Problem] = []
    root = Section(raw, "", problems)
    gw = _parse_gateway(root.sub("gateway"))
    inbound = _parse_listener(root.sub("inbound"), "inbound")
    outbound = _parse_listener(root.sub("outbound"), "outbound")
    tls = _parse_tls(root.sub("tls"))
    quarantine = _parse_quarantine(root.sub("quarantine"))
    for name, validate in SECTION_VALIDATORS.items():
        sub = root.sub(name)
        validate(sub)
    for name in raw:
        if name not in root.seen:
            known = list(_CORE_SECTIONS) + list(SECTION_VALIDATORS)
            close = difflib.get_close_matches(name, known, n=1)
            hint = f'; did you mean "[{close[0]}]"?' if close else ""
            problems.append(Problem(name, f"is not a section the gateway knows{hint}"))
    if inbound.listen == outbound.listen and inbound.listen[1] != 0:
        problems.append(Problem("outbound.listen", "must differ from inbound.listen"))
    if problems:
        for i, p in enumerate(problems):
            problems[i] = Problem(p.key.lstrip("."), p.message, find_line(text, p.key.lstrip(".")))
        raise ConfigError(source, problems)
    return Config(gw, inbound, outbound, tls, quarantine, source=source, raw=raw)


def load_config(path: str | Path | None = None) -> Config:
    """Load the config file; without a path, the shipped ``config/gateway.toml``."""
    p = Path(path) if path is not None else DEFAULT_CONFIG_PATH
    if path is None and not p.exists():
        from importlib.resources import files

        embedded = files("gateway").joinpath("data/gateway.toml").read_text(encoding="utf-8")
        return parse_config(embedded, "<embedded>")
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(p), [Problem("(file)", f'"{p}" does not exist')]) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(str(p), [Problem("(file)", f'"{p}" cannot be read: {e}')]) from None
    return parse_config(text, str(p))


def section(config: Config, name: str) -> Section:
    """A filter's own section, read again from the validated config (problems already reported)."""
    return Section(config.raw.get(name), name, [])


def find_line(text: str, key: str) -> int | None:
    """The line a dotted key is written on, for error messages (best effort)."""
    parts = re.sub(r"\[\d+\]$", "", key).split(".")
    if not parts or parts == [""] or parts[0].startswith("("):
        return None
    table, name = ".".join(parts[:-1]), parts[-1]
    current = ""
    header_line = None
    for no, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        m = re.match(r"^\[\s*([A-Za-z0-9_.\- ]+?)\s*\]\s*(#.*)?$", stripped)
        if m:
            current = m.group(1).replace(" ", "")
            if current == ".".join(parts):
                return no
            if current == table and header_line is None:
                header_line = no  # a missing key is pointed at its section
            continue
        if current == table and re.match(rf"^{re.escape(name)}\s*=", stripped):
            return no
    return header_line
