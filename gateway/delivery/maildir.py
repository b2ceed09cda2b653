"""Durable Maildir writes: tmp/, fsync, rename into new/, fsync the folder; files 0600 in 0700
folders, since held and delivered mail (confidential mail included) is nobody else's to read.

A message counts as delivered (or held) only once this returns; the SMTP client is told 250 after.
"""

from __future__ import annotations

import itertools
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from gateway.content import CHUNK, Content
from gateway.files import sync_folder

__all__ = ["ensure_maildir", "lf_chunks", "unique_name", "write_message"]

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


def lf_chunks(data: Content, size: int = CHUNK) -> Iterator[bytes]:
    """``data`` with CRLF made LF, a chunk at a time (a CR that ends a chunk waits for the
    next)."""
    carry = b""
    for view in data.chunks(size):
        chunk = carry + bytes(view)
        carry = b"\r" if chunk.endswith(b"\r") else b""
        yield chunk[:len(chunk) - len(carry)].replace(b"\r\n", b"\n")
    if carry:
        yield carry


def write_message(root: Path, data: bytes | Content, name: str | None = None) -> Path:
    """Write ``data`` (CRLF or LF) into ``root/new`` with LF line endings; returns the path.

    Raises OSError (disk full, unwritable folder); nothing is left in new/ when it does.
    """
    ensure_maildir(root)
    name = name or unique_name()
    tmp = root / "tmp" / name
    final = root / "new" / name
    try:
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f:
            for chunk in lf_chunks(Content.of(data)):
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    sync_folder(root / "new")
    return final
