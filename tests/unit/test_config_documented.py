"""The shipped config documents itself: every setting the parser reads appears in
config/gateway.toml (set, or commented out with its default), and nothing there is a setting the
parser does not know. The IT volunteer edits that one file, so it must be the whole list."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway.assembly import parse_config
from gateway.config import reader

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "gateway.toml"
# [policy] is a table of finding codes (its vocabulary is `council-gateway pipeline`'s list),
# not a fixed set of settings.
OPEN_TABLES = ("policy",)


def _asked(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    asked: set[str] = set()
    original = reader.Section._get

    def recording(self: reader.Section, name: str, *args: object) -> object:
        asked.add(self.key(name).lstrip("."))
        return original(self, name, *args)  # type: ignore[arg-type]

    original_has = reader.Section.has

    def recording_has(self: reader.Section, name: str) -> bool:
        asked.add(self.key(name).lstrip("."))
        return original_has(self, name)

    monkeypatch.setattr(reader.Section, "_get", recording)
    monkeypatch.setattr(reader.Section, "has", recording_has)
    parse_config(SHIPPED.read_text(encoding="utf-8"), str(SHIPPED))
    return {k for k in asked if k.split(".")[0] not in OPEN_TABLES}


def _written() -> set[str]:
    """Keys in the file, set or commented out ("# key = ..."), under their [section]."""
    keys: set[str] = set()
    section = ""
    for line in SHIPPED.read_text(encoding="utf-8").splitlines():
        if m := re.match(r"^\[([\w.]+)\]\s*$", line):
            section = m.group(1)
        elif m := re.match(r"^#?\s?([a-z_][a-z0-9_]*)\s*=", line):
            if section not in OPEN_TABLES:
                keys.add(f"{section}.{m.group(1)}")
        # A table of the council's own entries is documented by naming it in a comment.
        for sub in re.findall(r"^#.*\[([\w]+\.[\w]+)\]", line):
            keys.add(sub)
    return keys


def test_every_setting_the_gateway_reads_is_in_the_shipped_config(
        monkeypatch: pytest.MonkeyPatch) -> None:
    missing = sorted(_asked(monkeypatch) - _written())
    assert missing == [], f"not documented in {SHIPPED.name}: {missing}"


def test_the_shipped_config_names_no_setting_the_gateway_does_not_read(
        monkeypatch: pytest.MonkeyPatch) -> None:
    unknown = sorted(_written() - _asked(monkeypatch))
    assert unknown == [], f"in {SHIPPED.name} but never read: {unknown}"
