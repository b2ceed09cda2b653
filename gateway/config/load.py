"""Parsing the whole file once, against a :class:`Schema` of the sections there are.

The schema comes from :mod:`gateway.assembly`, which knows every section and filter; this module
knows none of them, so nothing here depends on import order.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from gateway.config import legacy
from gateway.config.core import (
    Config,
    parse_gateway,
    parse_listener,
    parse_quarantine,
    parse_tls,
)
from gateway.config.reader import ConfigError, Problem, Section, find_line

__all__ = ["DEFAULT_CONFIG_PATH", "Schema", "SectionSpec", "load_config", "parse_config"]

DEFAULT_CONFIG_PATH = Path("config/gateway.toml")
CORE_SECTIONS = ("gateway", "inbound", "outbound", "tls", "quarantine")


@dataclass(frozen=True)
class SectionSpec:
    name: str
    parse: Callable[[Section], object]
    # Settings read once when the gateway starts (a listening address): a reload says a restart
    # is needed when they change, and keeps the running value.
    restart: tuple[str, ...] = ()


@dataclass(frozen=True)
class Schema:
    sections: tuple[SectionSpec, ...]
    filters: Mapping[str, tuple[str, ...]]  # side -> the filters it may list


def _located(text: str, problems: list[Problem]) -> list[Problem]:
    return [Problem(p.key.lstrip("."), p.message, find_line(text, p.key.lstrip(".")))
            for p in problems]


def parse_config(text: str, schema: Schema, source: str = "<text>") -> Config:
    """Parse and validate TOML text. Raises ConfigError listing every problem."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"line (\d+)", str(e))
        line = int(m.group(1)) if m else None
        raise ConfigError(source, [Problem("(file)", f"is not valid TOML: {e}", line)]) from None
    raw, notes, problems = legacy.translate(raw)
    root = Section(raw, "", problems)
    gw = parse_gateway(root.sub("gateway"))
    inbound = parse_listener(root.sub("inbound"), "inbound", schema.filters["inbound"],
                             gw.max_connections)
    outbound = parse_listener(root.sub("outbound"), "outbound", schema.filters["outbound"],
                              gw.max_connections)
    tls = parse_tls(root.sub("tls"))
    quarantine = parse_quarantine(root.sub("quarantine"))
    sections = {spec.name: spec.parse(root.sub(spec.name)) for spec in schema.sections}
    known = list(CORE_SECTIONS) + [spec.name for spec in schema.sections]
    for name in raw:
        if name not in root.seen:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f'; did you mean "[{close[0]}]"?' if close else ""
            problems.append(Problem(name, f"is not a section the gateway knows{hint}"))
    if inbound.listen is not None and inbound.listen == outbound.listen \
            and inbound.listen[1] != 0:
        problems.append(Problem("outbound.listen", "must differ from inbound.listen"))
    if problems:
        raise ConfigError(source, _located(text, problems))
    return Config(gw, inbound, outbound, tls, quarantine, sections=sections, source=source,
                  notes=tuple(_located(text, notes)))


def load_config(path: str | Path | None, schema: Schema) -> Config:
    """Load the config file; without a path ``config/gateway.toml``, or the embedded default
    when that does not exist."""
    p = Path(path) if path is not None else DEFAULT_CONFIG_PATH
    if path is None and not p.exists():
        embedded = files("gateway").joinpath("data/gateway.toml").read_text(encoding="utf-8")
        return parse_config(embedded, schema, "<embedded>")
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(p), [Problem("(file)", f'"{p}" does not exist')]) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(str(p), [Problem("(file)", f'"{p}" cannot be read: {e}')]) from None
    return parse_config(text, schema, str(p))
