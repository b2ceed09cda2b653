"""clamd's answers, addresses and versions read by pure functions (no sockets)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from gateway.adapters.clamd import (
    ClamdAddress,
    ClamdVersion,
    Outcome,
    parse_address,
    parse_scan_reply,
    parse_version,
    session_reply,
)
from gateway_ops.clamd import TEMPLATE, limits_for, render_conf

REPLIES = [
    (b"stream: OK\0", Outcome.CLEAN, ""),
    (b"stream: OK\n", Outcome.CLEAN, ""),
    (b"stream: Eicar-Test-Signature FOUND\0", Outcome.INFECTED, "Eicar-Test-Signature"),
    (b"stream: Eicar-Test-Signature.UNOFFICIAL FOUND\0", Outcome.INFECTED,
     "Eicar-Test-Signature"),
    (b"stream: Win.Test.EICAR_HDB-1(44d88612fea8a8f36de82e1278abb02f:68) FOUND\0",
     Outcome.INFECTED, "Win.Test.EICAR_HDB-1"),
    (b"stream: Clamav.Test.File-6 FOUND", Outcome.INFECTED, "Clamav.Test.File-6"),
    (b"stream: Heuristics.Limits.Exceeded.MaxRecursion FOUND\0", Outcome.LIMITS,
     "Heuristics.Limits.Exceeded.MaxRecursion"),
    (b"INSTREAM size limit exceeded. ERROR\0", Outcome.TOO_BIG, ""),
    (b"stream: Can't create temporary file ERROR\0", Outcome.ERROR, ""),
    (b"", Outcome.ERROR, ""),
    (b"\0", Outcome.ERROR, ""),
    (b"HTTP/1.1 400 Bad Request\r\n", Outcome.ERROR, ""),
    (b"stream:  FOUND\0", Outcome.ERROR, ""),
    (b"stream: O", Outcome.ERROR, ""),  # cut short
    (b"\xff\xfe garbage", Outcome.ERROR, ""),
]


@pytest.mark.parametrize(("raw", "outcome", "signature"), REPLIES)
def test_scan_replies_are_classified(raw: bytes, outcome: Outcome, signature: str) -> None:
    reply = parse_scan_reply(raw)
    assert reply.outcome is outcome
    assert reply.signature == signature
    if outcome is Outcome.ERROR:
        assert reply.detail  # every failure says why, for the log


ADDRESSES = [
    ("tcp://127.0.0.1:3310", ClamdAddress("tcp", host="127.0.0.1", port=3310)),
    ("127.0.0.1:3310", ClamdAddress("tcp", host="127.0.0.1", port=3310)),
    ("tcp://[::1]:3310", ClamdAddress("tcp", host="::1", port=3310)),
    ("tcp://localhost:1", ClamdAddress("tcp", host="localhost", port=1)),
    ("unix:/run/clamav/clamd.ctl", ClamdAddress("unix", path="/run/clamav/clamd.ctl")),
    ("unix:///run/clamav/clamd.ctl", ClamdAddress("unix", path="/run/clamav/clamd.ctl")),
    ("unix:run/clamd/clamd.sock", ClamdAddress("unix", path="run/clamd/clamd.sock")),
    ("/run/clamav/clamd.ctl", ClamdAddress("unix", path="/run/clamav/clamd.ctl")),
]


@pytest.mark.parametrize(("text", "expected"), ADDRESSES)
def test_addresses_are_parsed(text: str, expected: ClamdAddress) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize("text", ["", "unix:", "tcp://127.0.0.1", "127.0.0.1:0",
                                  "127.0.0.1:70000", "http://127.0.0.1:3310", "clamd"])
def test_bad_addresses_are_refused_in_words(text: str) -> None:
    with pytest.raises(ValueError, match="clamd address|port|socket"):
        parse_address(text)


def test_address_prints_as_written_in_the_config() -> None:
    assert str(parse_address("tcp://[::1]:3310")) == "tcp://[::1]:3310"
    assert str(parse_address("/x/clamd.sock")) == "unix:/x/clamd.sock"


VERSIONS = [
    (b"ClamAV 1.4.6/27500/Mon Nov 20 09:00:00 2023\0",
     ClamdVersion("1.4.6", "27500", date(2023, 11, 20)),
     "ClamAV 1.4.6/27500 2023-11-20"),
    (b"ClamAV 1.4.6\0", ClamdVersion("1.4.6"), "ClamAV 1.4.6 (test signatures only)"),
    (b"ClamAV 0.103.11/26000/garbled date\n", ClamdVersion("0.103.11", "26000"),
     "ClamAV 0.103.11/26000"),
]


@pytest.mark.parametrize(("raw", "expected", "header"), VERSIONS)
def test_versions_give_a_one_line_header(raw: bytes, expected: ClamdVersion,
                                         header: str) -> None:
    version = parse_version(raw)
    assert version == expected
    assert version.header_value == header
    assert "\n" not in version.header_value


@pytest.mark.parametrize("raw", [b"", b"PONG\0", b"SpamAssassin 4.0\0", b"ClamAV\0"])
def test_non_clamd_versions_are_none(raw: bytes) -> None:
    assert parse_version(raw) is None


LIMITS = [
    (1024 * 1024, ("2M", "8M")),
    (2 * 1024 * 1024, ("3M", "12M")),
    (25 * 1024 * 1024, ("26M", "104M")),
    (10_000_000, ("11M", "44M")),
]


@pytest.mark.parametrize(("max_size", "expected"), LIMITS)
def test_clamd_limits_follow_max_message_size(max_size: int, expected: tuple[str, str]) -> None:
    stream, scan = limits_for(max_size)
    assert (stream, scan) == expected
    assert int(stream[:-1]) * 1024 * 1024 >= max_size + 512 * 1024  # room for added headers


def _directives(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.strip().partition(" ")
            out.setdefault(key, []).append(value)
    return out


def test_rendered_conf_is_loopback_only_with_its_own_paths(tmp_path: Path) -> None:
    text = render_conf(tmp_path / "run", tmp_path / "db", tcp_port=3399,
                       max_message_size=25 * 1024 * 1024)
    d = _directives(text)
    assert d["TCPAddr"] == ["127.0.0.1"]
    assert d["TCPSocket"] == ["3399"]
    for key, name in [("LocalSocket", "clamd.sock"), ("PidFile", "clamd.pid"),
                      ("TemporaryDirectory", "tmp"), ("LogFile", "clamd.log")]:
        assert d[key] == [str(tmp_path / "run" / name)]
    assert d["DatabaseDirectory"] == [str(tmp_path / "db")]
    assert d["StreamMaxLength"] == ["26M"] and d["MaxFileSize"] == ["26M"]
    assert d["MaxScanSize"] == ["104M"]
    assert d["AlertExceedsMax"] == ["yes"]
    assert d["AlertOLE2Macros"] == ["no"]
    assert "User" not in d
    assert "$" not in text.replace("${name}", "")


def test_rendered_conf_names_the_user_when_started_by_root(tmp_path: Path) -> None:
    d = _directives(render_conf(tmp_path, tmp_path, tcp_port=1, max_message_size=1,
                                user="clamav"))
    assert d["User"] == ["clamav"]


def test_template_is_package_data_and_config_links_to_it() -> None:
    """Read with importlib.resources (so a pip install finds it); config/clamd.conf, where the
    layout promises it, is the same file."""
    assert str(TEMPLATE).endswith("gateway_ops/data/clamd.conf")
    shipped = Path(__file__).resolve().parents[2] / "config" / "clamd.conf"
    assert shipped.read_text() == TEMPLATE.read_text()


@pytest.mark.parametrize("raw, number, expected", [
    (b"1: stream: OK\0", 1, b"stream: OK\0"),
    (b"12: stream: Eicar-Test-Signature FOUND\0", 12, b"stream: Eicar-Test-Signature FOUND\0"),
    (b"2: stream: OK\0", 3, None),          # another command's answer
    (b"stream: OK\0", 1, None),             # not numbered: not a session's answer
    (b"x: stream: OK\0", 1, None),
    (b"", 1, None),
])
def test_session_answers_are_matched_to_their_command(raw: bytes, number: int,
                                                      expected: bytes | None) -> None:
    assert session_reply(raw, number) == expected
