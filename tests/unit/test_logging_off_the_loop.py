"""While the gateway serves, log lines are written by a thread of their own: a stalled stderr
holds up nobody, the connection id is the one where the line was logged, nothing is lost."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest

from gateway.logctx import ConnIdFilter, conn_id, logging_off_the_loop


class Stalling(logging.Handler):
    """Writes nothing until ``unstuck`` is set, as a stderr nobody reads."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.unstuck = threading.Event()
        self.lines: list[tuple[str, str]] = []  # (thread, formatted line)
        self.setFormatter(logging.Formatter("conn=%(conn)s: %(message)s"))
        self.addFilter(ConnIdFilter())

    def emit(self, record: logging.LogRecord) -> None:
        self.entered.set()
        self.unstuck.wait(10)
        self.lines.append((threading.current_thread().name, self.format(record)))


@pytest.fixture
def stalling() -> Iterator[Stalling]:
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    handler = Stalling()
    root.handlers = [handler]
    root.setLevel(logging.INFO)
    yield handler
    root.handlers, root.level = saved, level


def test_a_stalled_handler_does_not_hold_up_the_caller(stalling: Stalling) -> None:
    log = logging.getLogger("gateway.test")
    with logging_off_the_loop():
        token = conn_id.set("c42")
        try:
            log.info("first %s", "line")
            assert stalling.entered.wait(10)
            log.info("second")
            log.warning("third", exc_info=ValueError("broken"))
            assert stalling.lines == []  # the handler is still stuck, the caller is not
        finally:
            conn_id.reset(token)
        stalling.unstuck.set()
    assert [text.splitlines()[0] for _, text in stalling.lines] == [
        "conn=c42: first line", "conn=c42: second", "conn=c42: third"]
    assert "ValueError: broken" in stalling.lines[2][1]
    assert all(thread != threading.current_thread().name for thread, _ in stalling.lines)


def test_afterwards_lines_are_written_where_they_are_logged(stalling: Stalling) -> None:
    stalling.unstuck.set()
    before = logging.getLogger().handlers[:]
    with logging_off_the_loop():
        assert logging.getLogger().handlers != before
    assert logging.getLogger().handlers == before
    assert any(isinstance(f, ConnIdFilter) for f in stalling.filters)
    logging.getLogger("gateway.test").info("now")
    assert stalling.lines == [(threading.current_thread().name, "conn=-: now")]
