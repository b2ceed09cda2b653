"""This machine: can each side listen where it is told (or is a gateway already listening
there), are the secrets and mail folders private, and is there room for held mail and the
audit log?"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import shutil
import socket
from collections.abc import Sequence
from pathlib import Path

from gateway.config import Config
from gateway.doctor.results import Result, ok, problem, warning
from gateway.permissions import loose_permissions

__all__ = ["PROBLEM_FREE", "WARN_FREE", "assess_free", "assess_listen", "check_listen",
           "disk_space", "listening_process", "permissions", "try_bind"]

MIB = 1024 * 1024
WARN_FREE = 1024 * MIB  # less free space than this is a warning
PROBLEM_FREE = 100 * MIB  # and less than this a problem: held mail and the audit log stop


# --------------------------------------------------------------------------- listening

def try_bind(host: str, port: int) -> OSError | None:
    """Bind (and let go) every address ``host`` stands for, as ``run`` will (SO_REUSEADDR,
    IPv6 sockets v6-only); the error, or None when the port is free."""
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        return OSError(errno.EADDRNOTAVAIL, f"{host} is not an address of this machine ({e})")
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                s.bind(address)
            except OSError as e:
                return e
    return None


def listening_process(port: int) -> str:
    """``"process 812 (/usr/lib/postfix/sbin/master -w)"`` for the process listening on TCP
    ``port``, from /proc (Linux; only processes this user may look at); "" when unknown."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) \
                    == port:
                inodes.add(f"socket:[{fields[9]}]")
    if not inodes:
        return ""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if not any(os.readlink(fd) in inodes for fd in (proc / "fd").iterdir()):
                continue
            words = (proc / "cmdline").read_bytes().rstrip(b"\0").split(b"\0")
        except OSError:
            continue
        command = " ".join(w.decode("utf-8", "replace") for w in words)[:120]
        return f"process {proc.name} ({command})" if command else f"process {proc.name}"
    return ""


def assess_listen(side: str, host: str, port: int, error: OSError | None, greeting: str,
                  owner: str) -> Result:
    """``error`` what binding gave; ``greeting`` the first line whoever listens there sent;
    ``owner`` the process that listens, when known."""
    c, where = "listen.port", f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"
    subject = f"{side}: {where}"
    if port == 0:
        return ok(c, subject, f"The {side} side listens on a port the system picks (port 0).")
    if error is None:
        return ok(c, subject, f"The {side} side can listen on {where}.")
    fix = f"Or choose another [{side}] listen address."
    if error.errno == errno.EADDRINUSE:
        who = "; ".join(x for x in (owner, f"it greets: {greeting}" if greeting else "") if x)
        who = f" ({who})" if who else ""
        if "council-gateway" in greeting:
            return ok(c, subject, f"{where} is in use by a running gateway{who}.")
        return problem(c, subject, f"{where} is in use by another program{who}, so the "
                                   f"{side} side cannot listen there.",
                       "Stop that program there (Postfix on port 25: inet_interfaces = "
                       f"loopback-only, or remove its smtp line in master.cf). {fix}")
    if error.errno == errno.EACCES:
        return problem(c, subject, f"The {side} side may not listen on {where}: ports below "
                                   "1024 need root or the CAP_NET_BIND_SERVICE capability.",
                       "Give the gateway that capability (systemd: AmbientCapabilities="
                       f"CAP_NET_BIND_SERVICE). {fix}")
    if error.errno == errno.EADDRNOTAVAIL:
        return problem(c, subject, f"The {side} side cannot listen on {where}: {host} is not "
                                   "an address of this machine.",
                       f"Use one of its addresses (ip -brief address), or 0.0.0.0 for all. {fix}")
    return problem(c, subject, f"The {side} side cannot listen on {where} "
                               f"({error.strerror or error}).", fix)


async def _greeting(host: str, port: int, wait: float) -> str:
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    try:
        async with asyncio.timeout(wait):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                line = await reader.readline()
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
    except (OSError, TimeoutError):
        return ""
    return line.decode("utf-8", "replace").strip()[:200]


async def check_listen(side: str, listen: tuple[str, int], wait: float = 3.0) -> Result:
    host, port = listen
    error = try_bind(host, port) if port else None
    greeting = owner = ""
    if error is not None and error.errno == errno.EADDRINUSE:
        greeting, owner = await asyncio.gather(_greeting(host, port, wait),
                                               asyncio.to_thread(listening_process, port))
    return assess_listen(side, host, port, error, greeting, owner)


# --------------------------------------------------------------------------- files and disk

def permissions(config: Config) -> list[Result]:
    """:func:`gateway.permissions.loose_permissions`, one warning each."""
    out = []
    for text in loose_permissions(config):
        key, _, rest = text.partition(": ")
        sentence, sep, fix = rest.rpartition("; make it private with: ")
        if not sep:
            sentence, fix = rest, "chmod 600 for a file, chmod 700 for a folder"
        out.append(warning("files.permissions", key, f"{key}: {sentence}.",
                           f"Make it private: {fix}"))
    return out or [ok("files.permissions", "files", "The gateway's secrets and mail folders "
                                                    "can be read by its own user only.")]


def _size(n: int) -> str:
    return f"{n / (1024 * MIB):.1f} GiB" if n >= 1024 * MIB else f"{n / MIB:.0f} MiB"


def assess_free(what: str, where: Path, free: int) -> Result:
    c, subject = "disk.free", str(where)
    if free < PROBLEM_FREE:
        return problem(c, subject, f"Only {_size(free)} is free on the disk of {what} "
                                   f'("{where}"): mail cannot be held and the audit log stops.',
                       "Free some space (council-gateway quarantine purge, old logs), or move "
                       "them to a bigger disk.")
    if free < WARN_FREE:
        return warning(c, subject, f"Only {_size(free)} is free on the disk of {what} "
                                   f'("{where}").',
                       "Free some space before it runs out (council-gateway quarantine purge, "
                       "old logs).")
    return ok(c, subject, f'{_size(free)} is free on the disk of {what} ("{where}").')


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def disk_space(places: Sequence[tuple[str, Path]]) -> list[Result]:
    """Free space for each place (what, path); places on one disk are reported once."""
    by_device: dict[int, tuple[list[str], Path]] = {}
    out: list[Result] = []
    for what, path in places:
        found = _existing(path.absolute())
        try:
            device = found.stat().st_dev
        except OSError as e:
            out.append(problem("disk.free", str(path), f'"{path}" cannot be looked at '
                                                       f"({e.strerror}).",
                               "Check the path and that the gateway's user may reach it."))
            continue
        by_device.setdefault(device, ([], found))[0].append(what)
    for whats, found in by_device.values():
        out.append(assess_free(" and ".join(whats), found, shutil.disk_usage(found).free))
    return out
