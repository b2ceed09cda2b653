"""``council-gateway init DIR``: a starter installation in a folder of its own.

Writes the shipped config (the package's ``data/gateway.toml``) with every path pointing inside
DIR, copies the footer files, makes the folders (0700), and never overwrites a config that is
already there. An installation made this way lives outside the source tree, so ``git pull`` in
a checkout never meets a locally changed file.

The rewriting is done on the text, line by line, so that every comment of the shipped config
stays: :func:`rehome` for the paths, :func:`set_value` for a single setting (also used by
``scripts/run`` to point a copy of the config at Debian's clamav-daemon).
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

import gateway
from gateway.assembly import parse_config
from gateway.config import ConfigError
from gateway.files import replace_file

__all__ = [
    "DEBIAN_CLAMD_CONF",
    "DEBIAN_SOCKET",
    "DEBIAN_STREAM_MAX",
    "FOLDERS",
    "add_parser",
    "clamd_stream_max_length",
    "rehome",
    "set_value",
    "size_value",
    "starter_config",
    "toml_string",
]

# The folders of an installation: the first part of every relative path in the shipped config.
FOLDERS = ("config", "state", "logs", "quarantine", "mailbox", "outbox")
# Copied from the package into DIR/config, for the council to edit.
COPIED = ("footer.txt", "footer.html")

DEBIAN_SOCKET = "unix:/run/clamav/clamd.ctl"  # Debian's clamav-daemon (clamav-daemon.socket)
DEBIAN_CLAMD_CONF = Path("/etc/clamav/clamd.conf")
# Debian's clamd.conf says StreamMaxLength 25M; assumed when the file cannot be read.
DEBIAN_STREAM_MAX = 25 * 1024 * 1024

KNOWN_SENDERS = """\
# Known senders: mail from these addresses is never held as junk, as long as it is shown to be
# genuine (SPF, DKIM or DMARC). One entry a line:
#   jane.smith@nalc.gov.uk                  one address
#   Jane Smith <jane.smith@nalc.gov.uk>     one address, with the name she signs with
#   @northamptonshire.gov.uk                everyone at a domain
# Lines starting with # are comments. Manage this list with:
#   council-gateway senders list | add ADDRESS | remove ADDRESS
"""

_HEADER = re.compile(r"^\s*\[\s*([A-Za-z0-9_.\-]+)\s*\]\s*(?:#.*)?$")
_PATH_VALUE = re.compile(
    r'^(?P<lead>\s*(?:#\s*)?[A-Za-z0-9_\-]+\s*=\s*)"(?P<scheme>maildir:)?'
    r'(?P<path>(?:' + "|".join(FOLDERS) + r')(?:/[^"\\]*)?)"')
_RELATIVE = re.compile(r"^(?:maildir:)?(?:" + "|".join(FOLDERS) + r")(?:/|$)")


def toml_string(text: str) -> str:
    """``text`` as a TOML basic string."""
    out = ['"']
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def size_value(size: int) -> str:
    """A size as the config writes it: ``"25MiB"`` when it is whole MiB, else the bytes."""
    mib = 1024 * 1024
    return f'"{size // mib}MiB"' if size % mib == 0 else str(size)


def _section_span(lines: list[str], section: str) -> tuple[int, int] | None:
    """(the header's index, the next header's index) of ``[section]``."""
    start = None
    for i, line in enumerate(lines):
        m = _HEADER.match(line)
        if m is None:
            continue
        if start is not None:
            return start, i
        if m.group(1) == section:
            start = i
    return None if start is None else (start, len(lines))


def _value_end(lines: list[str], first: int) -> int:
    """The index after the last line of the value that starts on ``lines[first]``."""
    for end in range(first + 1, len(lines) + 1):
        try:
            tomllib.loads("".join(lines[first:end]))
        except tomllib.TOMLDecodeError:
            continue
        return end
    return first + 1


def _lookup(doc: dict[str, Any], section: str, key: str) -> Any:
    table: Any = doc
    for part in section.split("."):
        table = table.get(part, {}) if isinstance(table, dict) else {}
    return table.get(key) if isinstance(table, dict) else None


def set_value(text: str, section: str, key: str, value: str, note: str = "") -> str:
    """``text`` with ``key`` in ``[section]`` set to the TOML ``value`` (and ``note`` as a
    comment after it), every other line kept: the key's own line (or lines) replaced; else a
    commented-out example of it (``# key = ...``) replaced, so later line numbers stay; else a
    line added under the header; else the section added at the end. Raises ValueError when the
    result does not read back as that value."""
    line = f"{key} = {value}" + (f"  # {note}" if note else "") + "\n"
    lines = text.splitlines(keepends=True)
    span = _section_span(lines, section)
    if span is None:
        out = text + ("" if not text or text.endswith("\n") else "\n") + f"\n[{section}]\n{line}"
    else:
        head, end = span
        live = re.compile(rf"^\s*{re.escape(key)}\s*=")
        example = re.compile(rf"^\s*#\s*{re.escape(key)}\s*=")
        found = next((i for i in range(head + 1, end) if live.match(lines[i])), None)
        if found is not None:
            lines[found:_value_end(lines, found)] = [line]
        elif (found := next((i for i in range(head + 1, end) if example.match(lines[i])),
                            None)) is not None:
            lines[found] = line
        else:
            lines.insert(head + 1, line)
        out = "".join(lines)
    try:
        got = _lookup(tomllib.loads(out), section, key)
        wanted = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"could not set [{section}] {key}: {e}") from None
    if got != wanted:
        raise ValueError(f"could not set [{section}] {key} (it reads {got!r})")
    return out


def rehome(text: str, folder: Path) -> str:
    """The shipped config's relative paths (``"config/users"``, ``"maildir:mailbox"``, ...)
    made to point inside ``folder``, on live and commented-out lines alike."""
    out = []
    for line in text.splitlines(keepends=True):
        m = _PATH_VALUE.match(line)
        if m:
            value = toml_string((m["scheme"] or "") + str(folder / m["path"]))
            line = m["lead"] + value + line[m.end():]
        out.append(line)
    return "".join(out)


def _strings(value: Any, key: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield key, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, f"{key}.{k}" if key else k)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, f"{key}[{i}]")


def starter_config(shipped: str, folder: Path, config_path: Path, clamav: str,
                   stream_max_length: int | None) -> str:
    """The config ``init`` writes: the shipped text with its paths inside ``folder``, the
    clamd address ``clamav`` (and clamd's StreamMaxLength when known), and a header."""
    text = rehome(shipped, folder)
    text = text.replace("--config config/gateway.toml", f"--config {config_path}")
    text = set_value(text, "clamav", "address", toml_string(clamav))
    if stream_max_length:
        text = set_value(text, "clamav", "stream_max_length", size_value(stream_max_length))
    for key, value in _strings(tomllib.loads(text)):
        if _RELATIVE.match(value):
            raise RuntimeError(f"init left a relative path in the config: {key} = {value!r}")
    header = (f'# Written by "council-gateway init" from the shipped config: every path below '
              f"points inside\n# {folder}. Edit this file; the shipped one is only the "
              "gateway's embedded default.\n#\n")
    return header + text


def clamd_stream_max_length(conf: Path = DEBIAN_CLAMD_CONF) -> int:
    """clamd's StreamMaxLength in bytes, as its config file says (``25M``, ``100K``, bytes);
    Debian's 25M when the file cannot be read or does not say."""
    try:
        text = conf.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return DEBIAN_STREAM_MAX
    found = DEBIAN_STREAM_MAX
    for line in text.splitlines():
        m = re.fullmatch(r"\s*StreamMaxLength\s+(\d+)\s*([kKmM]?)\s*", line)
        if m:
            found = int(m.group(1)) * {"": 1, "k": 1024, "m": 1024 * 1024}[m.group(2).lower()]
    return found


def _is_checkout(folder: Path) -> bool:
    return (folder / "pyproject.toml").is_file() and (folder / "gateway" / "cli.py").is_file()


def _checkout_around(path: Path) -> Path | None:
    """The gateway's source tree that ``path`` would be inside: the checkout the gateway runs
    from (an editable install), or any checkout of it above ``path``."""
    running = Path(gateway.__file__).resolve().parents[1]
    if _is_checkout(running) and (path == running or running in path.parents):
        return running
    return next((p for p in [path, *path.parents] if _is_checkout(p)), None)


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "init",
        help="make a starter installation in a folder: config, folders, footer files",
        description="Make a starter installation in DIR, outside the source tree: the shipped "
                    "config with every path pointing inside DIR (config/, state/, logs/, "
                    "quarantine/, mailbox/, outbox/), the footer files to edit, and the "
                    "folders, readable by their owner only. An existing config is never "
                    "overwritten. Check the result with: council-gateway check-config "
                    "--config DIR/gateway.toml",
    )
    p.add_argument("dir", metavar="DIR", help="the installation's folder, e.g. "
                   "/var/lib/council-gateway (made if missing)")
    p.add_argument("--config", "-c", metavar="PATH", default=None,
                   help="where to write the config (default: DIR/gateway.toml), e.g. "
                        "/etc/council-gateway/gateway.toml")
    p.add_argument("--clamav", metavar="ADDRESS", default=DEBIAN_SOCKET,
                   help=f"the clamd to use (default: {DEBIAN_SOCKET}, Debian's "
                        'clamav-daemon; "tcp://127.0.0.1:3310" for the one '
                        "scripts/start-clamd starts)")
    p.set_defaults(func=run)


def _make_folder(path: Path) -> bool:
    """Make ``path`` (0700) if missing; True if it was made."""
    if path.is_dir():
        return False
    path.mkdir(mode=0o700, parents=True)
    path.chmod(0o700)
    return True


def run(args: argparse.Namespace) -> int:
    folder = Path(args.dir).expanduser().absolute()
    config_path = (Path(args.config).expanduser().absolute() if args.config
                   else folder / "gateway.toml")
    for what, path in (("DIR", folder), ("the config", config_path)):
        tree = _checkout_around(path.resolve())
        if tree is not None:
            print(f"init: {what} ({path}) is inside the gateway's source tree ({tree}). A "
                  "live installation belongs outside it, e.g. /var/lib/council-gateway, so "
                  "that git pull never meets your changes.", file=sys.stderr)
            return 1
    if config_path.exists():
        print(f"init: {config_path} already exists; init never overwrites a config. Move it "
              "away first, or choose another folder.", file=sys.stderr)
        return 1
    debian = args.clamav == DEBIAN_SOCKET
    shipped = files("gateway").joinpath("data/gateway.toml").read_text(encoding="utf-8")
    try:
        text = starter_config(shipped, folder, config_path, args.clamav,
                              clamd_stream_max_length() if debian else None)
    except ValueError as e:
        print(f"init: {e}", file=sys.stderr)
        return 2

    made = [p for p in [folder, *(folder / name for name in FOLDERS)] if _make_folder(p)]
    open_to_others = [p for p in [folder, *(folder / name for name in FOLDERS)]
                      if p not in made and p.stat().st_mode & 0o077]
    copied, kept = [], []
    extra = {name: files("gateway").joinpath(f"data/{name}").read_bytes() for name in COPIED}
    extra["known-senders.txt"] = KNOWN_SENDERS.encode()
    for name, data in extra.items():
        target = folder / "config" / name
        try:
            replace_file(target, data, exclusive=True)
            copied.append(target)
        except FileExistsError:
            kept.append(target)
    try:
        parse_config(text, str(config_path))  # as check-config will read it
    except ConfigError as err:
        print("init: the config would have problems, so it was not written:", file=sys.stderr)
        for problem in err.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 2
    try:
        replace_file(config_path, text.encode("utf-8"), exclusive=True)
    except FileExistsError:
        print(f"init: {config_path} already exists; init never overwrites a config.",
              file=sys.stderr)
        return 1

    print(f"Wrote {config_path}: the shipped config, every path inside {folder}.")
    if made:
        print("Made (readable by you only): " + ", ".join(str(p) for p in made))
    for p in open_to_others:
        print(f"Note: {p} was already there and others can read it: chmod 700 {p}")
    if copied:
        print("Copied, to edit: " + ", ".join(str(p) for p in copied))
    if kept:
        print("Kept as they were: " + ", ".join(str(p) for p in kept))
    if debian:
        print(f"Virus scanner: Debian's clamav-daemon at {DEBIAN_SOCKET} (apt-get install "
              "clamav-daemon clamav-freshclam).")
    else:
        print(f"Virus scanner: {args.clamav}.")
    print("Next: set council_domains, hostname and deliver_to in the config, then check it:\n"
          f"  council-gateway check-config --config {config_path}")
    return 0
