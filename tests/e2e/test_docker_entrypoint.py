"""The container's entrypoint script, run with the real shell (Docker itself is not needed).

For the start-up itself the container's folders are laid out under a temporary root
(ENTRYPOINT_ROOT), and clamd, freshclam and council-gateway are small stand-ins on PATH that
record how they were called; the clamd.conf is rendered by the real gateway_ops and is then
given to the real clamd once, to show that clamd takes it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from importlib.resources import files
from pathlib import Path

import pytest

from gateway.commands.init import set_value
from gateway_ops.clamd import clamd_binary, ping, stop_process
from tests.fixtures_clamd import free_port

PROJECT = Path(__file__).resolve().parents[2]
ENTRYPOINT = PROJECT / "scripts" / "docker-entrypoint"


def _run(*args: str, timeout: float = 30, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", str(ENTRYPOINT), *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **env}, check=False)


def test_without_a_mounted_config_it_stops_and_says_listen_must_be_0_0_0_0(
        tmp_path: Path) -> None:
    done = _run(GATEWAY_CONFIG=str(tmp_path / "absent.toml"))
    assert done.returncode == 2
    assert f"no configuration at {tmp_path / 'absent.toml'}" in done.stderr
    assert 'listen = "0.0.0.0:2525"' in done.stderr


def test_arguments_replace_the_gateway_command(tmp_path: Path) -> None:
    done = _run("sh", "-c", "echo ran; exit 7", GATEWAY_CONFIG=str(tmp_path / "absent.toml"))
    assert (done.returncode, done.stdout) == (7, "ran\n")


# ------------------------------------------------------------------------- the start-up

STAND_INS = {
    # Records its arguments; "--daemon" returns at once, like the real one once it has forked.
    # FRESHCLAM_FETCHES=later: the daemon "fetches" the signatures a moment after it starts.
    "freshclam": r"""
        echo "$*" >> "$ENTRYPOINT_ROOT/freshclam.calls"
        case " $* " in
          *" --daemon "*)
            if [ "${FRESHCLAM_FETCHES:-}" = later ]; then
              ( sleep 0.5; : > "$ENTRYPOINT_ROOT/var/lib/clamav/daily.cvd" ) >/dev/null 2>&1 &
            fi
            exit 0 ;;
        esac
        exit "${FRESHCLAM_ONCE_STATUS:-0}"
    """,
    # Opens the socket its clamd.conf names (as the real one does once it has loaded).
    "clamd": r"""
        echo "$*" >> "$ENTRYPOINT_ROOT/clamd.calls"
        conf=${1#--config-file=}
        sock=$(sed -n 's/^LocalSocket //p' "$conf")
        "$PYTHON" -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$sock"
    """,
    # The gateway: records its arguments; waits a little for clamd when asked to.
    "council-gateway": r"""
        echo "$*" >> "$ENTRYPOINT_ROOT/gateway.calls"
        if [ "${GATEWAY_WAITS_FOR_CLAMD:-}" = yes ]; then
          i=0
          while [ ! -e "$ENTRYPOINT_ROOT/clamd.calls" ] && [ "$i" -lt 100 ]; do
            sleep 0.1; i=$((i + 1))
          done
        fi
    """,
}


@pytest.fixture
def container(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """The container's folders under a temporary root, the stand-ins on PATH, and a mounted
    config with max_message_size 10MiB."""
    root = tmp_path / "root"
    for folder in ("var/lib/clamav", "run/clamav", "app/logs", "app/config", "etc/clamav"):
        (root / folder).mkdir(parents=True)
    shutil.copyfile(PROJECT / "docker" / "clamd.conf", root / "etc/clamav/clamd-gateway.conf")
    shutil.copyfile(PROJECT / "docker" / "freshclam.conf",
                    root / "etc/clamav/freshclam-gateway.conf")
    shipped = files("gateway").joinpath("data/gateway.toml").read_text(encoding="utf-8")
    (root / "app/config/gateway.toml").write_text(
        set_value(shipped, "gateway", "max_message_size", '"10MiB"'), encoding="utf-8")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in STAND_INS.items():
        (bin_dir / name).write_text("#!/bin/sh\n" + textwrap.dedent(body))
        (bin_dir / name).chmod(0o755)
    env = {"ENTRYPOINT_ROOT": str(root), "GATEWAY_CONFIG": str(root / "app/config/gateway.toml"),
           "PYTHON": sys.executable, "PATH": f"{bin_dir}:{os.environ['PATH']}",
           "PYTHONPATH": str(PROJECT)}
    return root, env


def _calls(root: Path, name: str) -> list[str]:
    path = root / f"{name}.calls"
    return path.read_text().splitlines() if path.exists() else []


def test_start_renders_clamd_conf_keeps_freshclam_running_and_runs_the_gateway(
        container: tuple[Path, dict[str, str]]) -> None:
    root, env = container
    (root / "var/lib/clamav/main.cvd").write_bytes(b"")
    done = _run(**env)
    assert done.returncode == 0, done.stderr

    conf = (root / "run/clamav/clamd.conf").read_text()
    # the limits follow max_message_size = "10MiB" of the mounted config
    assert "\nStreamMaxLength 11M\n" in conf and "\nMaxFileSize 11M\n" in conf
    assert "\nMaxScanSize 44M\n" in conf
    assert f"\nLocalSocket {root}/run/clamav/clamd.ctl\n" in conf
    assert f"\nLogFile {root}/app/logs/clamd.log\n" in conf
    assert f"\nDatabaseDirectory {root}/var/lib/clamav\n" in conf

    # signatures were there: no fetch before the start, one daemon that stays up
    [freshclam] = _calls(root, "freshclam")
    assert "--daemon" in freshclam.split()
    assert f"--daemon-notify={root}/run/clamav/clamd.conf" in freshclam.split()
    assert f"--datadir={root}/var/lib/clamav" in freshclam.split()
    assert "freshclam is running" in done.stderr
    assert _calls(root, "clamd") == [f"--config-file={root}/run/clamav/clamd.conf"]
    assert _calls(root, "gateway") == [f"run --config {root}/app/config/gateway.toml"]


def test_first_start_fetches_once_then_keeps_the_daemon(
        container: tuple[Path, dict[str, str]]) -> None:
    root, env = container
    done = _run(**env, FRESHCLAM_FETCHES="later", FRESHCLAM_ONCE_STATUS="1",
                CLAMD_WAIT_INTERVAL="0.1", GATEWAY_WAITS_FOR_CLAMD="yes")
    assert done.returncode == 0, done.stderr
    once, daemon = _calls(root, "freshclam")
    assert "--daemon" not in once.split() and "--daemon" in daemon.split()
    assert "freshclam could not fetch" in done.stderr
    assert "clamd not started yet" in done.stderr
    # the gateway ran at once; clamd followed when the daemon had fetched the signatures
    assert _calls(root, "gateway") == [f"run --config {root}/app/config/gateway.toml"]
    deadline = time.monotonic() + 10
    while not _calls(root, "clamd") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _calls(root, "clamd") == [f"--config-file={root}/run/clamav/clamd.conf"]


def test_a_config_with_problems_stops_before_clamd(
        container: tuple[Path, dict[str, str]]) -> None:
    root, env = container
    (root / "app/config/gateway.toml").write_text('[gateway]\nmax_message_size = "lots"\n')
    done = _run(**env)
    assert done.returncode == 2
    assert "max_message_size" in done.stderr
    assert not _calls(root, "clamd") and not _calls(root, "gateway")


def test_clamd_off_runs_only_the_gateway(container: tuple[Path, dict[str, str]]) -> None:
    root, env = container
    done = _run(**env, CLAMD="no")
    assert done.returncode == 0, done.stderr
    assert not _calls(root, "freshclam") and not _calls(root, "clamd")
    assert not (root / "run/clamav/clamd.conf").exists()
    assert _calls(root, "gateway") == [f"run --config {root}/app/config/gateway.toml"]


def test_the_real_clamd_takes_the_rendered_conf(tmp_path: Path) -> None:
    """docker/clamd.conf as the entrypoint renders it, with the project's test signatures in
    place of freshclam's: Debian's clamd starts with it and answers on both addresses."""
    run_dir, db, logs = tmp_path / "run", tmp_path / "db", tmp_path / "logs"
    for folder in (run_dir, db, logs):
        folder.mkdir()
    for sig in Path(str(files("gateway").joinpath("data/signatures"))).iterdir():
        if sig.suffix in (".ndb", ".hdb", ".ldb", ".hsb", ".ign2", ".fp"):
            shutil.copyfile(sig, db / sig.name)
    port = free_port()
    config = tmp_path / "gateway.toml"
    config.write_text('[gateway]\ncouncil_domains = ["stanion-pc.gov.uk"]\n'
                      f'[clamav]\naddress = "tcp://127.0.0.1:{port}"\n')
    conf = run_dir / "clamd.conf"
    rendered = subprocess.run(
        [sys.executable, "-m", "gateway_ops.clamd", "--config", str(config), "--render-only",
         str(conf), "--template", str(PROJECT / "docker" / "clamd.conf"), "--run-dir",
         str(run_dir), "--database-dir", str(db), "--log-dir", str(logs)],
        capture_output=True, text=True, timeout=60, cwd=PROJECT)
    assert rendered.returncode == 0, rendered.stderr
    assert "WARNING" not in rendered.stderr
    proc = subprocess.Popen([clamd_binary(), f"--config-file={conf}", "--foreground"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not ping(("127.0.0.1", port)) and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.1)
        assert ping(("127.0.0.1", port))
        assert ping(str(run_dir / "clamd.ctl"))
    finally:
        stop_process(proc)
        if proc.stderr:
            proc.stderr.close()
