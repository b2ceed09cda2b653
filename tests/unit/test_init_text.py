"""The text rewriting behind ``council-gateway init``: paths moved, one setting set, comments
kept."""

from __future__ import annotations

import tomllib
from importlib.resources import files
from pathlib import Path

import pytest

from gateway.commands.init import (
    clamd_stream_max_length,
    rehome,
    set_value,
    starter_config,
    toml_string,
)

SHIPPED = files("gateway").joinpath("data/gateway.toml").read_text(encoding="utf-8")
MIB = 1024 * 1024


@pytest.mark.parametrize("text, section, key, value, expected", [
    # the key's own line
    ('[a]\nx = 1\ny = 2\n', "a", "x", "5", '[a]\nx = 5\ny = 2\n'),
    # a value over several lines is replaced whole
    ('[a]\nx = [\n  1,\n  2,\n]\ny = 2\n', "a", "x", '"z"', '[a]\nx = "z"\ny = 2\n'),
    # the same key in another section is left alone
    ('[b]\nx = 1\n[a]\nx = 2\n', "a", "x", "3", '[b]\nx = 1\n[a]\nx = 3\n'),
    # a commented-out example becomes the setting (later lines keep their numbers)
    ('[a]\n# x = "26MiB"\ny = 2\n', "a", "x", '"1MiB"', '[a]\nx = "1MiB"\ny = 2\n'),
    # otherwise under the header
    ('[a]\ny = 2\n[b]\n', "a", "x", "1", '[a]\nx = 1\ny = 2\n[b]\n'),
    # or a new section at the end
    ('[b]\ny = 2', "a", "x", "1", '[b]\ny = 2\n\n[a]\nx = 1\n'),
    # a sub-table
    ('[a]\n[a.b]\nx = 1\n', "a.b", "x", "2", '[a]\n[a.b]\nx = 2\n'),
])
def test_set_value(text: str, section: str, key: str, value: str, expected: str) -> None:
    assert set_value(text, section, key, value) == expected


def test_set_value_refuses_what_would_not_read_back() -> None:
    with pytest.raises(ValueError):
        set_value("[a]\nx = 1\n", "a", "x", "not toml")


@pytest.mark.parametrize("text", ['a"b', "back\\slash", "tab\there", "ünïcode 😀", "del\x7f"])
def test_toml_string_reads_back(text: str) -> None:
    assert tomllib.loads(f"v = {toml_string(text)}")["v"] == text


def test_rehome_moves_every_relative_path_and_nothing_else(tmp_path: Path) -> None:
    home = tmp_path / "live gateway"
    text = rehome(SHIPPED, home)
    assert len(text.splitlines()) == len(SHIPPED.splitlines())
    doc = tomllib.loads(text)
    assert doc["outbound"]["users_file"] == str(home / "config" / "users")
    assert doc["inbound"]["deliver_to"] == f"maildir:{home / 'mailbox'}"
    assert doc["outbound"]["deliver_to"] == f"maildir:{home / 'outbox'}"
    assert doc["quarantine"]["path"] == str(home / "quarantine")
    assert doc["gateway"]["audit_log"] == str(home / "logs" / "audit.jsonl")
    assert doc["outbound"]["login_locks_file"] == str(home / "state" / "login-locks.json")
    # a commented-out example points there too, ready to be uncommented
    assert f'# ed25519_private_key_file = "{home}/config/dkim-gateway-ed.key"' in text
    # words that are not paths are not touched
    assert doc["policy"] == tomllib.loads(SHIPPED)["policy"]


def test_starter_config_names_the_clamd_and_its_stream_limit(tmp_path: Path) -> None:
    text = starter_config(SHIPPED, tmp_path, tmp_path / "gateway.toml",
                          "unix:/run/clamav/clamd.ctl", 25 * MIB)
    clamav = tomllib.loads(text)["clamav"]
    assert clamav == {**clamav, "address": "unix:/run/clamav/clamd.ctl",
                      "stream_max_length": "25MiB"}
    assert f"check-config --config {tmp_path / 'gateway.toml'}" in text


@pytest.mark.parametrize("conf, size", [
    ("StreamMaxLength 25M\n", 25 * MIB),
    ("# StreamMaxLength 1M\nStreamMaxLength 100m\n", 100 * MIB),
    ("StreamMaxLength 512K\n", 512 * 1024),
    ("StreamMaxLength 1000000\n", 1_000_000),
    ("LocalSocket /run/clamav/clamd.ctl\n", 25 * MIB),
])
def test_clamd_stream_max_length(tmp_path: Path, conf: str, size: int) -> None:
    path = tmp_path / "clamd.conf"
    path.write_text(conf)
    assert clamd_stream_max_length(path) == size


def test_clamd_stream_max_length_without_the_file(tmp_path: Path) -> None:
    assert clamd_stream_max_length(tmp_path / "absent.conf") == 25 * MIB
