"""scripts/start-clamd starts the project's own clamd, waits for PONG, and is safe to run again.

Run as root (as on this test machine) clamd drops to the clamav account and must still be able
to write its socket and temporary files; run as anyone else it runs as that user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway_ops.clamd import ping, stop
from tests.fixtures_clamd import ClamdInstance, free_port

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


# ------------------------------------------------------------- [clamav] address and Debian's

def _config(tmp_path: Path, address: str, name: str = "gateway.toml") -> Path:
    path = tmp_path / name
    path.write_text('[gateway]\ncouncil_domains = ["stanion-pc.gov.uk"]\n'
                    'max_message_size = "2MiB"\n\n'
                    f'[clamav]\naddress = "{address}"\n', encoding="utf-8")
    return path


def _nowhere(tmp_path: Path) -> str:
    """A socket path where no Debian clamav-daemon answers."""
    return str(tmp_path / "no-debian" / "clamd.ctl")


def test_start_clamd_listens_on_the_configured_tcp_port(tmp_path: Path, run_dir: Path) -> None:
    port = free_port()
    config = _config(tmp_path, f"tcp://127.0.0.1:{port}")
    done = _run("--config", str(config), "--run-dir", str(run_dir), "--test-signatures",
                "--debian-socket", _nowhere(tmp_path))
    assert done.returncode == 0, done.stderr
    assert ping(("127.0.0.1", port))
    assert f"tcp://127.0.0.1:{port}" in done.stdout
    # the limits follow max_message_size from the same config
    assert "StreamMaxLength 3M" in (run_dir / "clamd.conf").read_text()


def test_start_clamd_listens_on_the_configured_unix_socket_only(run_dir: Path) -> None:
    sock = run_dir.parent / "sockets" / "clamd.ctl"  # a folder start-clamd makes
    config = _config(run_dir.parent, f"unix:{sock}")
    done = _run("--config", str(config), "--run-dir", str(run_dir), "--test-signatures",
                "--debian-socket", _nowhere(run_dir.parent))
    assert done.returncode == 0, done.stderr
    assert ping(str(sock))
    assert f"unix:{sock}" in done.stdout
    conf = (run_dir / "clamd.conf").read_text()
    assert f"LocalSocket {sock}" in conf
    assert "\nTCPSocket" not in conf
    again = _run("--config", str(config), "--run-dir", str(run_dir),
                 "--debian-socket", _nowhere(run_dir.parent))
    assert again.returncode == 0 and "already answers" in again.stdout


def test_start_clamd_refuses_to_start_clamd_for_another_machine(tmp_path: Path) -> None:
    config = _config(tmp_path, "tcp://192.0.2.10:3310")
    done = _run("--config", str(config), "--run-dir", str(tmp_path / "clamd"), "--wait", "1",
                "--debian-socket", _nowhere(tmp_path))
    assert done.returncode == 1
    assert "not this machine's loopback" in done.stderr


def test_something_silent_at_the_address_is_not_mistaken_for_free(tmp_path: Path) -> None:
    """A listener that takes connections but never answers (a clamd loading, or not clamd)
    is waited for, then reported; no second clamd is started on its socket."""
    sock_path = tmp_path / "silent.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as silent:
        silent.bind(str(sock_path))
        silent.listen(8)
        config = _config(tmp_path, f"unix:{sock_path}")
        done = _run("--config", str(config), "--run-dir", str(tmp_path / "clamd"),
                    "--wait", "1", "--debian-socket", _nowhere(tmp_path))
    assert done.returncode == 1
    assert "does not answer PING yet" in done.stderr and "not a clamd" in done.stderr
    assert not (tmp_path / "clamd" / "clamd.conf").exists()


def test_something_else_at_the_address_is_reported_at_once(tmp_path: Path) -> None:
    """A port where another server answers (an SMTP sink, say) is not waited for."""
    with socket.create_server(("127.0.0.1", 0)) as other:
        port = other.getsockname()[1]

        def greet() -> None:
            conn, _ = other.accept()
            with conn:
                conn.sendall(b"220 sink ready\r\n")
                conn.recv(16)

        thread = threading.Thread(target=greet)
        thread.start()
        config = _config(tmp_path, f"tcp://127.0.0.1:{port}")
        done = _run("--config", str(config), "--run-dir", str(tmp_path / "clamd"),
                    "--debian-socket", _nowhere(tmp_path))
        thread.join(timeout=30)
    assert done.returncode == 1
    assert f"something that is not clamd answers on tcp://127.0.0.1:{port}" in done.stderr


def test_debian_clamav_daemon_is_used_not_doubled(tmp_path: Path, clamd: ClamdInstance) -> None:
    """Nothing at [clamav] address, Debian's clamav-daemon answering (here the test clamd's
    socket stands in for /run/clamav/clamd.ctl): no clamd is started, and scripts/run gets a
    copy of the config that names Debian's socket, which check-config accepts."""
    debian = clamd.unix_address.removeprefix("unix:")
    debian_conf = tmp_path / "debian-clamd.conf"
    debian_conf.write_text("LocalSocket /run/clamav/clamd.ctl\nStreamMaxLength 20M\n")
    port = free_port()
    config = _config(tmp_path, f"tcp://127.0.0.1:{port}")
    copy = tmp_path / "run" / "gateway.toml"
    done = _run("--config", str(config), "--run-dir", str(tmp_path / "clamd"),
                "--debian-socket", debian, "--debian-clamd-conf", str(debian_conf),
                "--debian-config", str(copy))
    assert done.returncode == 0, done.stderr
    assert "Debian's clamav-daemon answers" in done.stdout
    assert "not starting a second clamd" in done.stdout
    assert not ping(("127.0.0.1", port))
    assert not (tmp_path / "clamd" / "clamd.conf").exists()
    text = copy.read_text()
    assert f'address = "unix:{debian}"' in text and 'stream_max_length = "20MiB"' in text
    checked = subprocess.run([sys.executable, "-m", "gateway", "check-config", "--config",
                              str(copy)], capture_output=True, text=True, timeout=60,
                             cwd=PROJECT)
    assert checked.returncode == 0 and checked.stdout.startswith("OK"), checked.stderr

    # The config names Debian's socket itself: it is used as it is, and the copy is gone.
    named = _config(tmp_path, f"unix:{debian}", "named.toml")
    used = _run("--config", str(named), "--run-dir", str(tmp_path / "clamd"),
                "--debian-socket", debian, "--debian-config", str(copy))
    assert used.returncode == 0, used.stderr
    assert "Debian's clamav-daemon already answers" in used.stdout
    assert not copy.exists()
