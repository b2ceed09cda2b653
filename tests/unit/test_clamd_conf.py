"""clamd.conf rendered for [clamav] address and for the container, by pure functions."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from gateway.adapters.clamd import ClamdAddress, parse_address
from gateway_ops.clamd import can_start_here, debian_copy, listening_addresses, render_conf

ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024


def _directives(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.strip().partition(" ")
            out.setdefault(key, []).append(value)
    return out


@pytest.mark.parametrize("address, here", [
    ("tcp://127.0.0.1:3310", True),
    ("tcp://127.0.0.2:3311", True),
    ("tcp://[::1]:3310", True),
    ("tcp://localhost:3310", True),
    ("unix:/run/council-gateway/clamd.sock", True),
    ("tcp://0.0.0.0:3310", False),
    ("tcp://10.0.0.5:3310", False),
    ("tcp://clamav.example:3310", False),
])
def test_clamd_is_started_only_where_other_machines_cannot_reach_it(address: str,
                                                                       here: bool) -> None:
    assert can_start_here(parse_address(address)) is here


def test_a_tcp_address_gives_that_port_and_a_socket_in_the_run_dir(tmp_path: Path) -> None:
    text = render_conf(tmp_path, tmp_path / "db", address=parse_address("tcp://127.0.0.1:3399"),
                       max_message_size=MIB)
    d = _directives(text)
    assert (d["TCPAddr"], d["TCPSocket"]) == (["127.0.0.1"], ["3399"])
    assert d["LocalSocket"] == [str(tmp_path / "clamd.sock")]
    assert listening_addresses(text) == [ClamdAddress("unix", path=str(tmp_path / "clamd.sock")),
                                         parse_address("tcp://127.0.0.1:3399")]


def test_a_unix_address_gives_only_that_socket(tmp_path: Path) -> None:
    sock = tmp_path / "sockets" / "clamd.ctl"
    text = render_conf(tmp_path, tmp_path / "db", address=parse_address(f"unix:{sock}"),
                       max_message_size=MIB)
    d = _directives(text)
    assert d["LocalSocket"] == [str(sock)]
    assert "TCPSocket" not in d and "TCPAddr" not in d
    assert listening_addresses(text) == [ClamdAddress("unix", path=str(sock))]


@pytest.mark.parametrize("size, stream, scan", [
    ("25MiB", "26M", "104M"), ("10MiB", "11M", "44M"), ("50MB", "49M", "196M")])
def test_the_containers_clamd_follows_max_message_size(tmp_path: Path, size: str, stream: str,
                                                       scan: str) -> None:
    from gateway.config.reader import parse_size

    text = render_conf(Path("/run/clamav"), Path("/var/lib/clamav"),
                       address=parse_address("tcp://127.0.0.1:3310"),
                       max_message_size=parse_size(size), log_dir=Path("/app/logs"),
                       template=ROOT / "docker" / "clamd.conf")
    d = _directives(text)
    assert d["StreamMaxLength"] == [stream] and d["MaxFileSize"] == [stream]
    assert d["MaxScanSize"] == [scan]
    assert d["LocalSocket"] == ["/run/clamav/clamd.ctl"]
    assert (d["TCPAddr"], d["TCPSocket"]) == (["127.0.0.1"], ["3310"])
    assert d["LogFile"] == ["/app/logs/clamd.log"]
    assert d["DatabaseDirectory"] == ["/var/lib/clamav"]
    assert "$" not in text


def test_the_containers_clamd_keeps_tcp_when_the_config_names_its_socket() -> None:
    text = render_conf(Path("/run/clamav"), Path("/var/lib/clamav"),
                       address=parse_address("unix:/run/clamav/clamd.ctl"),
                       max_message_size=MIB, template=ROOT / "docker" / "clamd.conf")
    assert _directives(text)["TCPSocket"] == ["3310"]


def test_debian_copy_changes_only_the_clamav_lines() -> None:
    shipped = (ROOT / "config" / "gateway.toml").read_text()
    copy = debian_copy(shipped, Path("/run/clamav/clamd.ctl"), 25 * MIB)
    clamav = tomllib.loads(copy)["clamav"]
    assert clamav["address"] == "unix:/run/clamav/clamd.ctl"
    assert clamav["stream_max_length"] == "25MiB"
    old, new = shipped.splitlines(), copy.splitlines()
    changed = [i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a != b]
    assert len(changed) == 2  # the address and the commented-out stream_max_length
    assert all("clamav" in new[i] or "stream_max_length" in new[i] for i in changed)
