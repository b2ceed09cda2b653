"""Durable Maildir writes: tmp/, fsync, rename into new/, fsync the folder; files 0600 in 0700
folders, since held and delivered mail (confidential mail included) is nobody else's to read.

A message counts as delivered (or held) only once this returns; the SMTP client is told 250 after.
"""

from __future__ import annotations

import itertools
import os
import socket
import time
from pathlib import Path

from gateway.files import sync_folder

__all__ = ["ensure_maildir", "write_message", "unique_name"]

_counter = itertools.count(1)  # next() on it is atomic: writers run in threads


def ensure_maildir(root: Path) -> None:
    """The folder and its tmp/, new/ and cur/, made readable by the gateway's user only."""
    if not root.is_dir():
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
    for sub in ("tmp", "new", "cur"):
        (root / sub).mkdir(mode=0o700, exist_ok=True)


def unique_name() -> str:
    """A Maildir unique name: seconds.M<micro>P<pid>Q<n>.<host>."""
    now = time.time()
    host = socket.gethostname().replace("/", "\\057").replace(":", "\\072")
    return f"{int(now)}.M{int(now % 1 * 1e6)}P{os.getpid()}Q{next(_counter)}.{host}"


def write_message(root: Path, data: bytes, name: str | None = None) -> Path:
    """Write ``data`` (CRLF or LF) into ``root/new`` with LF line endings; returns the path.

    Raises OSError (disk full, unwritable folder); nothing is left in new/ when it does.
    """
    ensure_maildir(root)
    name = name or unique_name()
    tmp = root / "tmp" / name
    final = root / "new" / name
    body = data.replace(b"\r\n", b"\n")
    try:
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    sync_folder(root / "new")
    return final
