"""What clamd says, read by pure functions: addresses, scan answers, versions (no sockets).

:mod:`gateway.adapters.clamd` does the talking and re-exports all of this.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

__all__ = [
    "ClamdAddress",
    "ClamdVersion",
    "Outcome",
    "ScanReply",
    "parse_address",
    "parse_scan_reply",
    "parse_version",
    "session_reply",
]


class Outcome(StrEnum):
    CLEAN = "clean"
    INFECTED = "infected"
    TOO_BIG = "too_big"  # the stream was longer than clamd's StreamMaxLength
    LIMITS = "limits"  # content beyond clamd's inner limits (AlertExceedsMax)
    ERROR = "error"  # no usable answer: unreachable, timed out, garbage, clamd-side error


@dataclass(frozen=True)
class ScanReply:
    """What one scan established. ``signature`` is set for INFECTED and LIMITS."""

    outcome: Outcome
    signature: str = ""
    detail: str = ""  # plain words for logs, e.g. "connection refused by tcp://127.0.0.1:3310"
    address: str = ""  # the clamd that answered (or the last one tried)


@dataclass(frozen=True)
class ClamdAddress:
    kind: str  # "tcp" | "unix"
    host: str = ""
    port: int = 0
    path: str = ""

    def __str__(self) -> str:
        if self.kind == "unix":
            return f"unix:{self.path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"tcp://{host}:{self.port}"


@dataclass(frozen=True)
class ClamdVersion:
    engine: str  # "1.4.6"
    db_version: str = ""  # "27500"; empty when only unofficial (test) signatures are loaded
    db_date: date | None = None

    @property
    def header_value(self) -> str:
        """The ``X-Virus-Scanned`` value: engine, signature database and its date, one line."""
        if not self.db_version:
            return f"ClamAV {self.engine} (test signatures only)"
        when = f" {self.db_date.isoformat()}" if self.db_date else ""
        return f"ClamAV {self.engine}/{self.db_version}{when}"

    @property
    def test_signatures_only(self) -> bool:
        return not self.db_version


def parse_address(text: str) -> ClamdAddress:
    """``"tcp://127.0.0.1:3310"``, ``"127.0.0.1:3310"``, ``"unix:/run/clamav/clamd.ctl"`` or an
    absolute socket path. Raises ValueError with a sentence the IT volunteer understands."""
    value = text.strip()
    if value.startswith("unix:"):
        path = value[len("unix:"):]
        if path.startswith("//"):
            path = path[2:]
        if not path:
            raise ValueError(f'"{text}" names no socket file; write it like '
                             '"unix:/run/clamav/clamd.ctl"')
        return ClamdAddress("unix", path=path)
    if value.startswith("/"):
        return ClamdAddress("unix", path=value)
    rest = value[len("tcp://"):] if value.startswith("tcp://") else value
    m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d{1,5})", rest) or re.fullmatch(
        r"([A-Za-z0-9.\-]+):(\d{1,5})", rest)
    if not m:
        raise ValueError(f'"{text}" is not a clamd address; write it like '
                         '"tcp://127.0.0.1:3310" or "unix:/run/clamav/clamd.ctl"')
    port = int(m.group(2))
    if not 1 <= port <= 65535:
        raise ValueError(f'"{text}" has no valid port (ports go from 1 to 65535)')
    return ClamdAddress("tcp", host=m.group(1), port=port)


_FOUND = re.compile(r"^(?:stream|[^:]*): (?P<name>.+?) FOUND$")


def _clean_signature(name: str) -> str:
    # ExtendedDetectionInfo adds "(md5:size)"; clamd marks signatures that do not come from the
    # official database with ".UNOFFICIAL", which says nothing about the threat itself.
    name = re.sub(r"\([0-9a-f]{32}:\d+\)$", "", name.strip())
    return name.removesuffix(".UNOFFICIAL")


def parse_scan_reply(raw: bytes) -> ScanReply:
    """Read clamd's answer to INSTREAM (NUL- or newline-terminated, possibly truncated)."""
    text = raw.replace(b"\0", b"\n").decode("utf-8", "replace").strip()
    if not text:
        return ScanReply(Outcome.ERROR, detail="clamd closed the connection without an answer")
    line = text.splitlines()[0].strip()
    if line in ("stream: OK", "stream:OK"):
        return ScanReply(Outcome.CLEAN)
    if "size limit exceeded" in line and line.endswith("ERROR"):
        return ScanReply(Outcome.TOO_BIG, detail="the message is longer than clamd's "
                                                   "StreamMaxLength")
    m = _FOUND.match(line)
    if m:
        name = _clean_signature(m.group("name"))
        if not name:
            return ScanReply(Outcome.ERROR, detail=f"clamd answered {line[:120]!r}")
        if name.startswith("Heuristics.Limits.Exceeded"):
            return ScanReply(Outcome.LIMITS, signature=name,
                             detail="part of the content is beyond clamd's scanning limits")
        return ScanReply(Outcome.INFECTED, signature=name)
    if line.endswith("ERROR"):
        return ScanReply(Outcome.ERROR, detail=f"clamd reported an error: {line[:200]}")
    return ScanReply(Outcome.ERROR, detail=f"clamd gave an answer that makes no sense: "
                                           f"{line[:120]!r}")


def session_reply(raw: bytes, request: int) -> bytes | None:
    """clamd's answer to the ``request``-th command of a session (``b"3: stream: OK\\0"``)
    without its number; None when it carries no number or another one (not our answer)."""
    number, sep, rest = raw.partition(b": ")
    if not sep or not number.isdigit() or int(number) != request:
        return None
    return rest


def parse_version(raw: bytes) -> ClamdVersion | None:
    """``b"ClamAV 1.4.6/27500/Mon Nov 20 09:00:00 2023"`` -> ClamdVersion; None if not clamd."""
    text = raw.replace(b"\0", b"").decode("utf-8", "replace").strip()
    m = re.fullmatch(r"ClamAV ([0-9][0-9A-Za-z.\-_+]*)(?:/(\d+)(?:/(.+))?)?", text)
    if not m:
        return None
    db_date = None
    if m.group(3):
        with contextlib.suppress(ValueError):
            db_date = datetime.strptime(m.group(3).strip(), "%a %b %d %H:%M:%S %Y").date()
    return ClamdVersion(m.group(1), m.group(2) or "", db_date)
