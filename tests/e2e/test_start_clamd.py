"""scripts/start-clamd starts the project's own clamd, waits for PONG, and is safe to run again.

Run as root (as on this test machine) clamd drops to the clamav account and must still be able
to write its socket and temporary files; run as anyone else it runs as that user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway_ops.clamd import ping, stop
from tests.fixtures_clamd import free_port

PROJECT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHON": sys.executable}
    return subprocess.run([str(PROJECT / "scripts" / "start-clamd"), *args], env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def run_dir() -> Iterator[Path]:
    # Not under pytest's tmp_path: that is closed to other users, and clamd may run as clamav.
    path = Path(tempfile.mkdtemp(prefix="council-clamd-"))
    path.chmod(0o755)
    yield path / "clamd"
    stop(path / "clamd")
    shutil.rmtree(path, ignore_errors=True)


def test_start_clamd_answers_and_is_idempotent(run_dir: Path) -> None:
    port = free_port()
    first = _run("--run-dir", str(run_dir), "--port", str(port), "--test-signatures")
    assert first.returncode == 0, first.stderr
    assert ping(("127.0.0.1", port))
    assert ping(str(run_dir / "clamd.sock"))
    assert "ONLY TEST SIGNATURES ARE LOADED" in first.stderr

    pid = int((run_dir / "clamd.pid").read_text())
    uid = int(next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                   if line.startswith("Uid:")).split()[1])
    expected = pwd.getpwnam("clamav").pw_uid if os.geteuid() == 0 else os.geteuid()
    assert uid == expected
    assert (run_dir / "tmp").stat().st_uid == expected  # clamd can write its temporary files

    again = _run("--run-dir", str(run_dir), "--port", str(port))
    assert again.returncode == 0
    assert "already answers" in again.stdout
    assert int((run_dir / "clamd.pid").read_text()) == pid

    stopped = _run("--run-dir", str(run_dir), "--stop")
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    assert not ping(("127.0.0.1", port))


def test_run_dir_closed_to_other_users(tmp_path: Path) -> None:
    """As root, clamd would run as clamav and could not reach the directory: said plainly, and
    clamd runs as root instead (a checkout under /root must still work). Asked explicitly to
    run as clamav, it refuses. As any other user, clamd runs as that user, who can."""
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    port = free_port()
    if os.geteuid() == 0:
        refused = _run("--run-dir", str(closed / "clamd"), "--port", str(port),
                       "--test-signatures", "--user", "clamav")
        assert refused.returncode == 1
        assert "cannot reach" in refused.stderr and "--run-dir" in refused.stderr
        assert not ping(("127.0.0.1", port))
    result = _run("--run-dir", str(closed / "clamd"), "--port", str(port), "--test-signatures")
    try:
        if os.geteuid() == 0:
            assert result.returncode == 0, result.stderr
            assert "cannot reach" in result.stderr and "Running clamd as root" in result.stderr
            assert ping(("127.0.0.1", port))
        else:
            assert result.returncode == 0, result.stderr
            assert ping(("127.0.0.1", port))
    finally:
        stop(closed / "clamd")
