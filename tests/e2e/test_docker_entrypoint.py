"""The container's entrypoint script, run with the real shell (Docker itself is not needed)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ENTRYPOINT = Path(__file__).resolve().parents[2] / "scripts" / "docker-entrypoint"


def _run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", str(ENTRYPOINT), *args], capture_output=True, text=True,
                          timeout=30, env={**os.environ, **env}, check=False)


def test_without_a_mounted_config_it_stops_and_says_listen_must_be_0_0_0_0(
        tmp_path: Path) -> None:
    done = _run(GATEWAY_CONFIG=str(tmp_path / "absent.toml"))
    assert done.returncode == 2
    assert f"no configuration at {tmp_path / 'absent.toml'}" in done.stderr
    assert 'listen = "0.0.0.0:2525"' in done.stderr


def test_arguments_replace_the_gateway_command(tmp_path: Path) -> None:
    done = _run("sh", "-c", "echo ran; exit 7", GATEWAY_CONFIG=str(tmp_path / "absent.toml"))
    assert (done.returncode, done.stdout) == (7, "ran\n")
