"""Who the council knows: known, learned and blocked senders (the ``[senders]`` section).

Stanion "Email": attachments are opened only from "a trusted source, i.e. from another known
individual, service provider or representative". A sender is known when their address (or their
whole domain, written ``@nalc.gov.uk``) is

- listed in the config (``[senders] known``),
- listed in the editable file (``[senders] file``, one entry a line, ``#`` comments), or
- learned: every address a councillor writes to through the outbound side (``learned_file``).

The clerk can block a sender (``blocked_file``): their mail is always quarantined. Entries in the
files may carry a display name (``Jane Smith <jane@nalc.gov.uk>``); the junk filter uses those
names to spot mail that borrows a known person's name from another address.

Files are changed under an exclusive lock and replaced atomically (fsynced), so the running
gateway, the command line and the web page can all change them at once without losing a line.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import re
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from gateway.config import Config, Section
from gateway.files import replace_file

__all__ = [
    "Entry",
    "add_entries",
    "SenderBook",
    "SendersConfig",
    "add_entry",
    "block_sender",
    "learn_recipients",
    "load_book",
    "normalise",
    "parse_entry",
    "parse_senders",
    "read_entries",
    "remove_everywhere",
    "remove_entry",
    "senders_config",
    "trust_sender",
]


@dataclass(frozen=True)
class SendersConfig:
    known: tuple[str, ...] = ()
    file: Path | None = Path("config/known-senders.txt")
    learned_file: Path = Path("config/learned-senders.txt")
    blocked_file: Path = Path("config/blocked-senders.txt")
    learn: bool = True


@dataclass(frozen=True)
class Entry:
    """One line of a senders file: an address or ``@domain``, with an optional display name."""

    value: str  # "jane@nalc.gov.uk" or "@nalc.gov.uk", lower case
    name: str = ""

    @property
    def is_domain(self) -> bool:
        return self.value.startswith("@")

    def __str__(self) -> str:
        return f"{self.name} <{self.value}>" if self.name else self.value


_ADDR = re.compile(r"^[^@\s<>,;\"]+@[a-z0-9.-]+\.[a-z0-9-]+$")
_DOMAIN = re.compile(r"^@[a-z0-9.-]+\.[a-z0-9-]+$")


def normalise(address: str) -> str:
    """``<Jane@NALC.gov.uk>`` -> ``jane@nalc.gov.uk`` (local parts compared case-insensitively)."""
    return address.strip().strip("<>").strip().lower()


def parse_entry(line: str) -> Entry:
    """Parse one entry; raises ValueError with a plain-English reason."""
    text = line.strip()
    name = ""
    m = re.match(r"^(.*?)\s*<([^<>]*)>$", text)
    if m:
        name, text = m.group(1).strip().strip('"').strip(), m.group(2)
    value = normalise(text)
    if _DOMAIN.match(value) or _ADDR.match(value):
        return Entry(value, " ".join(name.split()))
    if re.match(r"^[a-z0-9.-]+\.[a-z0-9-]+$", value):
        raise ValueError(f'"{line.strip()}" looks like a domain; write "@{value}" for a whole '
                         "domain")
    raise ValueError(f'"{line.strip()}" is not an address like "jane@nalc.gov.uk" or a domain '
                     'like "@nalc.gov.uk"')


def parse_senders(s: Section) -> SendersConfig:
    known = []
    for i, item in enumerate(s.str_list("known", ())):
        try:
            known.append(str(parse_entry(item)))
        except ValueError as e:
            s.problem(f"known[{i}]", str(e))
    cfg = SendersConfig(
        known=tuple(known),
        file=s.optional_path("file", "config/known-senders.txt"),
        learned_file=s.path("learned_file", "config/learned-senders.txt"),
        blocked_file=s.path("blocked_file", "config/blocked-senders.txt"),
        learn=s.flag("learn", True),
    )
    s.finish()
    return cfg


def senders_config(config: Config) -> SendersConfig:
    return config.section(SendersConfig)


# ---------------------------------------------------------------------- reading


def read_entries(path: Path | None) -> list[Entry]:
    """The valid entries of a senders file (a missing file has none; bad lines are skipped)."""
    if path is None:
        return []
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    out = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            out.append(parse_entry(line))
        except ValueError:
            continue
    return out


@dataclass(frozen=True)
class SenderBook:
    """A snapshot of every senders list, for fast look-ups while filtering one message."""

    council_domains: frozenset[str]
    known: dict[str, str] = field(default_factory=dict)  # address or @domain -> where listed
    blocked: frozenset[str] = frozenset()
    names: tuple[tuple[str, str], ...] = ()  # (display name, address) of known people

    def known_source(self, address: str) -> str | None:
        """Where ``address`` is listed ("config", "file", "learned", "council"), or None."""
        addr = normalise(address)
        if not addr or "@" not in addr:
            return None
        domain = "@" + addr.rpartition("@")[2]
        if domain[1:] in self.council_domains:
            return "council"
        return self.known.get(addr) or self.known.get(domain)

    def is_blocked(self, address: str) -> bool:
        addr = normalise(address)
        if not addr or "@" not in addr:
            return False
        return addr in self.blocked or "@" + addr.rpartition("@")[2] in self.blocked

    def known_domains(self) -> set[str]:
        """Every domain the council knows: its own, @domain entries and known addresses'."""
        out = set(self.council_domains)
        for value in self.known:
            out.add(value.rpartition("@")[2])
        return out


_cache_lock = threading.Lock()
_cache: dict[tuple[object, ...], SenderBook] = {}


def _stamp(path: Path | None) -> tuple[int, int] | None:
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def load_book(cfg: SendersConfig, council_domains: Iterable[str]) -> SenderBook:
    """The current senders lists; re-read only when one of the files changed."""
    council_domains = tuple(council_domains)
    paths = (cfg.file, cfg.learned_file, cfg.blocked_file)
    key = (cfg, council_domains, *(_stamp(p) for p in paths))
    with _cache_lock:
        book = _cache.get(key)
    if book is not None:
        return book
    known: dict[str, str] = {}
    names: list[tuple[str, str]] = []
    sources = (("config", [parse_entry(k) for k in cfg.known]), ("file", read_entries(cfg.file)),
               ("learned", read_entries(cfg.learned_file)))
    for source, entries in sources:
        for e in entries:
            known.setdefault(e.value, source)
            if e.name and not e.is_domain:
                names.append((e.name, e.value))
    blocked = frozenset(e.value for e in read_entries(cfg.blocked_file))
    book = SenderBook(frozenset(council_domains), known, blocked, tuple(names))
    with _cache_lock:
        _cache.clear()
        _cache[key] = book
    return book


# ---------------------------------------------------------------------- changing

_file_lock = threading.Lock()


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock beside ``path`` (a ``.lock`` file), across threads and processes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock, open(str(path) + ".lock", "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def _replace(path: Path, text: str) -> None:
    replace_file(path, text.encode("utf-8"))


def _current_text(path: Path, header: str) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return header


_HEADERS = {
    "learned": "# Addresses councillors have written to; the gateway adds them by itself.\n"
               "# Remove one with: council-gateway senders remove ADDRESS\n",
    "blocked": "# Senders whose mail is always held for the clerk.\n"
               "# Remove one with: council-gateway senders remove ADDRESS\n",
    "known": "# Known senders: one address or @domain a line.\n",
}


def add_entries(path: Path, entries: Iterable[Entry], kind: str = "known") -> list[Entry]:
    """Append the entries not yet in the file; returns those added. Raises OSError."""
    path = Path(path)
    with _locked(path):
        text = _current_text(path, _HEADERS.get(kind, ""))
        present = {e.value for e in _entries_in(text)}
        added = []
        for e in entries:
            if e.value not in present:
                present.add(e.value)
                added.append(e)
        if added:
            if text and not text.endswith("\n"):
                text += "\n"
            _replace(path, text + "".join(f"{e}\n" for e in added))
        return added


def add_entry(path: Path, entry: Entry, kind: str = "known") -> bool:
    return bool(add_entries(path, [entry], kind))


def _entries_in(text: str) -> list[Entry]:
    out = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            try:
                out.append(parse_entry(line))
            except ValueError:
                pass
    return out


def remove_entry(path: Path | None, value: str) -> bool:
    """Remove every line naming ``value`` (address or @domain); comments stay. Raises OSError."""
    if path is None or not Path(path).exists():
        return False
    path = Path(path)
    target = normalise(value)
    with _locked(path):
        lines = _current_text(path, "").splitlines(keepends=True)
        kept = []
        for line in lines:
            content = line.split("#", 1)[0].strip()
            try:
                if content and parse_entry(content).value == target:
                    continue
            except ValueError:
                pass
            kept.append(line)
        if len(kept) == len(lines):
            return False
        _replace(path, "".join(kept))
        return True


def remove_everywhere(config: Config, value: str) -> list[str]:
    """Remove an address or @domain from the known, learned and blocked files; says from which."""
    cfg = senders_config(config)
    removed = []
    for label, path in (("known senders file", cfg.file), ("learned senders", cfg.learned_file),
                        ("blocked senders", cfg.blocked_file)):
        if remove_entry(path, value):
            removed.append(label)
    return removed


def trust_sender(config: Config, address: str) -> bool:
    """Add an address to the known-senders file (and unblock it). Raises OSError."""
    cfg = senders_config(config)
    entry = parse_entry(address)
    remove_entry(cfg.blocked_file, entry.value)
    if cfg.file is None:
        return add_entry(cfg.learned_file, entry, "learned")
    return add_entry(cfg.file, entry, "known")


def block_sender(config: Config, address: str) -> bool:
    """Add an address to the blocked list and take it off the learned list. Raises OSError."""
    cfg = senders_config(config)
    entry = parse_entry(address)
    remove_entry(cfg.learned_file, entry.value)
    return add_entry(cfg.blocked_file, entry, "blocked")


async def learn_recipients(config: Config, rcpt_tos: Iterable[str]) -> list[str]:
    """After a successful outbound delivery: every outside recipient becomes a known sender.

    Council addresses, addresses already known and blocked addresses are left alone. Returns the
    addresses newly learned. Never raises for a bad address; raises OSError if the file cannot
    be written (the caller logs it: the message itself was already delivered).
    """
    cfg = senders_config(config)
    if not cfg.learn:
        return []
    book = load_book(cfg, config.gateway.council_domains)
    new = []
    for rcpt in rcpt_tos:
        try:
            entry = parse_entry(rcpt)
        except ValueError:
            continue
        if entry.is_domain or book.known_source(entry.value) or book.is_blocked(entry.value):
            continue
        new.append(entry)
    if not new:
        return []
    added = await asyncio.to_thread(add_entries, cfg.learned_file, new, "learned")
    return [e.value for e in added]
