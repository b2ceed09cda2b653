"""Where the open multiparts' boundary lines are in a message body, found without reading it a
line at a time: the complexity measure's search (see :mod:`gateway.mime.limits`)."""

from __future__ import annotations

import re

__all__ = ["BoundaryLines"]

_EOL = re.compile(rb"[\r\n]")


class BoundaryLines:
    """Finds the lines of a body that may be the open multiparts' boundary lines: those that
    start with "--" and a boundary. Searches go forwards only, each from where the last one
    stopped, so no byte is searched twice: ``bytes.find`` for lines starting "--" (the last
    place each of "\\n--" and "\\r--" was found is kept, so one that never comes is looked for
    once), then a check of what follows. Past many "--" lines that are not boundaries, one
    expression of the boundaries skips them in C instead, one for each set of open multiparts
    (kept, so a sender who opens and closes the same ones again costs nothing more)."""

    MANY = 1000  # "--" lines that are not boundaries before an expression is worth making
    EXPRESSIONS = 2048  # expressions made for one message at most (more than max_parts)
    DEEPEST = 32  # open multiparts an expression covers at most

    def __init__(self, data: bytes, stack: list[bytes]):
        self.data = data
        self.stack = stack  # the measure's own list, changed in place as parts open and close
        self.found = {b"\n--": -1, b"\r--": -1}
        self.skipped = 0
        self.made: dict[tuple[bytes, ...], re.Pattern[bytes]] = {}
        self.prefixes: tuple[bytes, ...] = ()
        self.exact: frozenset[bytes] = frozenset()
        self.pattern: re.Pattern[bytes] | None = None
        self.changed = True

    def opened_or_closed(self) -> None:
        self.changed = True

    def _refresh(self) -> None:
        self.changed = False
        self.prefixes = tuple(b"--" + b for b in self.stack)
        self.exact = frozenset((*self.prefixes, *(p + b"--" for p in self.prefixes)))
        self.pattern = None
        key = tuple(self.stack)
        if self.skipped > self.MANY and len(key) <= self.DEEPEST:
            self.pattern = self.made.get(key)
            if self.pattern is None and len(self.made) < self.EXPRESSIONS:
                self.pattern = self.made[key] = re.compile(
                    rb"[\r\n]--(?:" + b"|".join(map(re.escape, key))
                    + rb")(?:--)?[ \t]*(?=[\r\n]|\Z)")

    def is_boundary(self, line: bytes) -> bool:
        """Whether ``line`` (without its line end) is an open multipart's boundary line: the
        email package allows spaces and tabs after it, nothing else."""
        if self.changed:
            self._refresh()
        return line.rstrip(b" \t") in self.exact

    def _whole(self, line_at: int) -> bool:
        eol = _EOL.search(self.data, line_at)
        return self.is_boundary(self.data[line_at:eol.start() if eol else len(self.data)])

    def next_from(self, at: int) -> int:
        """The first such line at or after ``at`` (a line's start); ``len(data)`` if none."""
        if self.changed:
            self._refresh()
        data, end = self.data, len(self.data)
        if self.pattern is not None:
            return self._search(at - 1)  # from the end of the line before
        line_at = at if data.startswith(b"--", at) else self._dash_line(at)
        while line_at < end and not (data.startswith(self.prefixes, line_at)
                                     and self._whole(line_at)):
            self.skipped += 1
            if self.skipped == self.MANY + 1:
                self._refresh()
                if self.pattern is not None:
                    return self._search(line_at)
            line_at = self._dash_line(line_at + 1)
        return line_at

    def _search(self, start: int) -> int:
        assert self.pattern is not None
        found = self.pattern.search(self.data, start)
        return found.start() + 1 if found else len(self.data)

    def _dash_line(self, after: int) -> int:
        """The start of the first line starting "--" at or after ``after``."""
        end = len(self.data)
        best = end
        for marker, where in self.found.items():
            if where < after - 1:
                where = self.data.find(marker, after - 1)
                self.found[marker] = where = end if where < 0 else where
            if where < end:
                best = min(best, where + 1)
        return best
