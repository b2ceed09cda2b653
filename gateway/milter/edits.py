"""From the message as Postfix gave it to the message the pipeline made: milter edits.

The pipeline changes a message in a few ways: header fields put on top (the signature, the
trace and authentication fields), forged trust fields removed, a value changed (the junk tag in
the Subject, a new Content-Type when the footer wraps the body), and the body replaced. The
difference of the two header lists is expressed in the milter's terms: changes first (their
occurrence numbers still count the original fields), then deletions from the last occurrence
backwards, then insertions at the top; a field that appears in the middle is appended. Header
values keep their folding as written (line breaks as LF, which Postfix turns into its own).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Edits", "Field", "diff", "split_message"]

Field = tuple[str, bytes]  # (name as written, raw value after the colon)


@dataclass(frozen=True)
class Edits:
    change: tuple[tuple[int, str, bytes], ...] = ()  # (occurrence, name, new value)
    delete: tuple[tuple[int, str], ...] = ()  # (occurrence, name), last occurrence first
    insert_top: tuple[Field, ...] = ()  # in the order they must end up
    append: tuple[Field, ...] = ()
    body: bytes | None = None  # the new body, or None to keep it

    @property
    def empty(self) -> bool:
        return not (self.change or self.delete or self.insert_top or self.append
                    or self.body is not None)


def split_message(data: bytes) -> tuple[list[Field], bytes]:
    """(header fields with raw values, body) of a CRLF message."""
    end = data.find(b"\r\n\r\n")
    head, body = (data[:end], data[end + 4:]) if end >= 0 else (data, b"")
    fields: list[Field] = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and fields:
            name, value = fields[-1]
            fields[-1] = (name, value + b"\r\n" + line)
        elif b":" in line:
            raw_name, _, value = line.partition(b":")
            fields.append((raw_name.decode("ascii", "replace").strip(), value))
    return fields, body


def _occurrence(fields: Sequence[Field], index: int) -> int:
    """Which occurrence (from 1) of its name the field at ``index`` is."""
    name = fields[index][0].lower()
    return sum(1 for n, _ in fields[: index + 1] if n.lower() == name)


def _for_milter(value: bytes) -> bytes:
    return value.replace(b"\r\n", b"\n")


def diff(original: Sequence[Field], original_body: bytes, final: bytes) -> Edits:
    new, body = split_message(final)
    keys_old = [(n.lower(), v.strip()) for n, v in original]
    keys_new = [(n.lower(), v.strip()) for n, v in new]
    change: list[tuple[int, str, bytes]] = []
    delete: list[tuple[int, str]] = []
    top: list[Field] = []
    append: list[Field] = []
    matcher = difflib.SequenceMatcher(None, keys_old, keys_new, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            continue
        olds, news = list(range(i1, i2)), list(range(j1, j2))
        if op == "replace":
            # The same fields with new values (a tagged Subject) are changes; the rest is a
            # deletion and an insertion.
            while olds and news and keys_old[olds[0]][0] == keys_new[news[0]][0]:
                i, j = olds.pop(0), news.pop(0)
                change.append((_occurrence(original, i), original[i][0],
                               _for_milter(new[j][1])))
        delete += [(_occurrence(original, i), original[i][0]) for i in olds]
        target = top if i1 == 0 else append
        target += [(new[j][0], _for_milter(new[j][1])) for j in news]
    delete.sort(key=lambda d: (d[1].lower(), -d[0]))
    return Edits(tuple(change), tuple(delete), tuple(top), tuple(append),
                 body if body != original_body else None)
