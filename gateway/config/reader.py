"""Reading the TOML file: values checked one by one, every problem collected with its key.

Every problem is reported with its key path and, where it can be found, its line, in words the
IT volunteer understands. A :class:`Section` reads one table; the typed sections are built from
it by the parsers in :mod:`gateway.config.core` and in the modules that own each section.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

N = TypeVar("N", int, float)

__all__ = [
    "ConfigError",
    "NextHop",
    "Problem",
    "Section",
    "find_line",
    "parse_hostport",
    "parse_next_hop",
    "parse_size",
]



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
        # Server-to-server relay (a hosted mailbox's inbound host) is port 25, with or without
        # STARTTLS; implicit TLS has its own port. Submission on 587 is written out.
        port = 465 if tls == "implicit" else 25
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
        return str(self._get(name, default, (str,), 'text in quotes, e.g. "example"'))

    def flag(self, name: str, default: bool) -> bool:
        return bool(self._get(name, default, (bool,), "true or false"))

    def integer(self, name: str, default: int, minimum: int | None = None,
                maximum: int | None = None) -> int:
        value = int(self._get(name, default, (int,), "a whole number"))
        return self._range(name, value, default, minimum, maximum)

    def number(self, name: str, default: float, minimum: float | None = None,
               maximum: float | None = None) -> float:
        value = float(self._get(name, default, (int, float), "a number"))
        return self._range(name, value, default, minimum, maximum)

    def _range(self, name: str, value: N, default: N, minimum: N | None,
               maximum: N | None) -> N:
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
