"""Log lines under systemd: when stderr is the journal (JOURNAL_STREAM names it), no time of
our own (the journal adds one) and the level as a priority the journal reads; otherwise the
usual greppable lines with the time."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

SCRIPT = ("import logging; from gateway.cli import setup_logging; setup_logging(); "
          "logging.getLogger('gateway.test').warning('clamd: no answer'); "
          "logging.getLogger('gateway.test').info('ready')")


def _log_lines(tmp_path: Path, journal_stream: str | None) -> list[str]:
    out = tmp_path / "stderr"
    env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
    with open(out, "wb") as f:
        if journal_stream == "this file":
            st = os.fstat(f.fileno())
            journal_stream = f"{st.st_dev}:{st.st_ino}"
        if journal_stream is not None:
            env["JOURNAL_STREAM"] = journal_stream
        subprocess.run([sys.executable, "-c", SCRIPT], stderr=f, env=env, check=True,
                       timeout=60)
    return out.read_text().splitlines()


def test_lines_for_the_journal_have_a_priority_and_no_time(tmp_path: Path) -> None:
    assert _log_lines(tmp_path, "this file") == [
        "<4>WARNING gateway.test conn=-: clamd: no answer",
        "<6>INFO gateway.test conn=-: ready",
    ]


def test_lines_elsewhere_keep_their_time(tmp_path: Path) -> None:
    time = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} "
    for stream in (None, "1:2"):  # not under systemd; under it, but stderr sent to a file
        lines = _log_lines(tmp_path, stream)
        assert re.fullmatch(time + "WARNING gateway.test conn=-: clamd: no answer", lines[0])
