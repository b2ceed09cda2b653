"""While the gateway serves, stderr is written by a thread of its own: a stalled stream holds up
nobody, each line carries the connection id of where it was logged, nothing is lost on the way
out, and a stream that never takes lines costs bounded memory."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest

import gateway.logctx
from gateway.logctx import ConnIdFilter, conn_id, logging_off_the_loop


class StallingStream:
    """Takes nothing until ``unstuck`` is set, as a stderr nobody reads."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.unstuck = threading.Event()
        self.text = ""
        self.writers: set[str] = set()

    def write(self, text: str) -> None:
        self.entered.set()
        self.unstuck.wait(10)
        self.writers.add(threading.current_thread().name)
        self.text += text

    def flush(self) -> None:
        pass


@pytest.fixture
def stream() -> Iterator[StallingStream]:
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    out = StallingStream()
    handler = logging.StreamHandler(out)  # type: ignore[arg-type]
    handler.setFormatter(logging.Formatter("conn=%(conn)s: %(message)s"))
    handler.addFilter(ConnIdFilter())
    root.handlers = [handler]
    root.setLevel(logging.INFO)
    yield out
    root.handlers, root.level = saved, level


def test_a_stalled_stream_does_not_hold_up_the_caller(stream: StallingStream) -> None:
    log = logging.getLogger("gateway.test")
    with logging_off_the_loop():
        token = conn_id.set("c42")
        try:
            log.info("first %s", "line")
            assert stream.entered.wait(10)  # the writer is stuck in write()
            log.info("second")
            log.warning("third", exc_info=ValueError("broken"))
        finally:
            conn_id.reset(token)
        assert stream.text == ""  # still stuck, and the caller went on
        stream.unstuck.set()
    lines = stream.text.splitlines()
    assert [line for line in lines if line.startswith("conn=")] == [
        "conn=c42: first line", "conn=c42: second", "conn=c42: third"]
    assert "ValueError: broken" in stream.text
    assert threading.current_thread().name not in stream.writers


def test_lines_beyond_the_bound_are_counted_not_kept(stream: StallingStream,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gateway.logctx, "MAX_PENDING", 5)
    log = logging.getLogger("gateway.test")
    with logging_off_the_loop():
        log.info("line 0")
        assert stream.entered.wait(10)
        for i in range(1, 21):
            log.info("line %d", i)
        stream.unstuck.set()
    lines = stream.text.splitlines()
    assert lines[:6] == [f"conn=-: line {i}" for i in range(6)]
    assert lines[-1].endswith("15 log lines were dropped: the log stream did not take them")


def test_afterwards_lines_are_written_where_they_are_logged(stream: StallingStream) -> None:
    stream.unstuck.set()
    before = logging.getLogger().handlers[:]
    with logging_off_the_loop():
        assert logging.getLogger().handlers != before
    assert logging.getLogger().handlers == before
    logging.getLogger("gateway.test").info("now")
    assert stream.text == "conn=-: now\n"
    assert stream.writers == {threading.current_thread().name}
