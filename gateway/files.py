"""Writing the gateway's own files: whole or not at all, and readable by their owner only.

Keys, password hashes, logins and the senders lists are replaced atomically (a temporary file in
the same folder, fsynced, renamed over the old one, the folder fsynced), created 0600, so a crash
never leaves half a file and nobody else on the machine can read them.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["replace_file", "sync_folder"]


def sync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_file(path: Path, data: bytes, *, exclusive: bool = False) -> None:
    """Put ``data`` at ``path`` (mode 0600). With ``exclusive``, refuse (FileExistsError) when
    the file is already there."""
    path = Path(path)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # made 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if exclusive:
            os.link(tmp, path)  # fails if the name is taken, unlike rename
            os.unlink(tmp)
        else:
            os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    sync_folder(path.parent)
