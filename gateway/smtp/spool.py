"""Where a message waits while DATA brings it in.

In memory up to a threshold; beyond it, in a temporary file of the gateway's own: created 0600
and already unlinked (``tempfile.TemporaryFile``), so no other user can open it and it is gone
when it is closed, on every path, even when the gateway is killed. A slow upload (or many at
once) then holds a write buffer's worth of memory each, not the message, and the whole message
is read back in one ``bytes`` of exactly its size: one copy, where joining the lines as they came
needs two at once.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import IO

__all__ = ["Spool"]

WRITE_BUFFER = 256 * 1024


class Spool:
    def __init__(self, threshold: int, directory: Path | None = None):
        self.threshold = threshold
        self.directory = directory
        self.size = 0
        self._lines: list[bytes] = []
        self._file: IO[bytes] | None = None

    @property
    def spilled(self) -> bool:
        """True once the message went to a file."""
        return self._file is not None

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self._file is not None:
            self._file.write(data)
            return
        self._lines.append(data)
        if self.size > self.threshold:
            file = tempfile.TemporaryFile(dir=self.directory, prefix="council-gateway-",
                                          buffering=WRITE_BUFFER)
            self._file = file
            for line in self._lines:
                file.write(line)
            self._lines = []

    def discard(self) -> None:
        """Forget what was written (the message will be refused), keep counting its size."""
        size = self.size
        self.close()
        self.size = size

    def take(self) -> bytes:
        """The whole message; the spool is empty (and its file gone) afterwards."""
        try:
            if self._file is None:
                return b"".join(self._lines)
            self._file.flush()
            fd = self._file.fileno()
            size = os.fstat(fd).st_size
            data = os.pread(fd, size, 0)
            if len(data) < size:  # a short read: unusual for a regular file
                rest = [data]
                while (got := sum(map(len, rest))) < size:
                    piece = os.pread(fd, size - got, got)
                    if not piece:
                        raise OSError(f"the spool file ended after {got} of {size} bytes")
                    rest.append(piece)
                data = b"".join(rest)
            return data
        finally:
            self.close()

    def close(self) -> None:
        self._lines = []
        self.size = 0
        if self._file is not None:
            file, self._file = self._file, None
            file.close()
