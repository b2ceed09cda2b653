"""How the process asks the C allocator for memory: big buffers go back to the system when freed.

glibc serves an allocation above its *mmap threshold* with a mapping of its own, returned to the
system when freed; below it, from its heaps, which keep freed memory for reuse. The threshold is
dynamic: each time a mapped buffer is freed it rises to that buffer's size (up to 32 MiB), so
after the first large message every later 20 MiB buffer and the email package's parse of it come
from the heaps (one per worker thread), and the process keeps the high-water mark of several
messages at once. A fixed threshold turns that off (``mallopt(M_MMAP_THRESHOLD)``): measured with
``python -m bench.hostile --only memory``, four 20 MiB messages at once peak 40 MiB lower.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

__all__ = ["MMAP_THRESHOLD", "return_big_buffers"]

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # from glibc's malloc.h
MMAP_THRESHOLD = 256 * 1024


def return_big_buffers(threshold: int = MMAP_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold; False (and nothing done) on another C library."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = bool(mallopt(M_MMAP_THRESHOLD, threshold))
    if not ok:
        log.info("the C library did not take a fixed mmap threshold")
    return ok
