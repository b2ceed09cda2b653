"""The package as pip installs it: built into a wheel (no warnings about its licence), installed
into a folder of its own, and run from there, far from the source tree: the clamd.conf template
and the shipped config are package data, not files of the checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(out),
                           str(PROJECT)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    [wheel] = out.glob("council_gateway-*.whl")
    yield wheel, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def installed(built: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("site")
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile",
                           "--target", str(target), str(built[0])],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return target


def _installed_python(target: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # The installed copy comes first on the path; the dependencies come from this venv.
    env = {**os.environ, "PYTHONPATH": str(target)}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd, env=env)


def test_licence_metadata_is_pep_639_and_the_build_does_not_warn(
        built: tuple[Path, str]) -> None:
    wheel, output = built
    warnings = [line for line in output.splitlines() if "licen" in line.lower()]
    assert warnings == []
    with zipfile.ZipFile(wheel) as zf:
        [metadata] = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        text = zf.read(metadata).decode()
        assert "License-Expression: MIT" in text
        assert "License-File: LICENSE" in text
        names = set(zf.namelist())
    assert {"gateway_ops/data/clamd.conf", "gateway/data/gateway.toml",
            "gateway/data/footer.txt", "gateway/data/footer.html"} <= names


def test_start_clamd_renders_its_template_from_the_installed_package(
        installed: Path, tmp_path: Path) -> None:
    done = _installed_python(
        installed, "-c", "import gateway, gateway_ops.clamd as c; print(gateway.__file__); "
        "print(c.TEMPLATE)", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    gateway_file, template = done.stdout.split()
    assert gateway_file.startswith(str(installed)) and template.startswith(str(installed))

    conf = tmp_path / "clamd.conf"
    rendered = _installed_python(
        installed, "-m", "gateway_ops.clamd", "--render-only", str(conf), "--run-dir",
        str(tmp_path / "run"), "--database-dir", str(tmp_path / "db"), cwd=tmp_path)
    assert rendered.returncode == 0, rendered.stderr
    text = conf.read_text()
    assert "StreamMaxLength 26M" in text and "TCPSocket 3310" in text


def test_init_from_the_installed_package(installed: Path, tmp_path: Path) -> None:
    made = _installed_python(installed, "-m", "gateway", "init", str(tmp_path / "live"),
                             cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    checked = _installed_python(installed, "-m", "gateway", "check-config", "--config",
                                str(tmp_path / "live" / "gateway.toml"), cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith("OK")
    # installed elsewhere, it still knows a checkout when asked to write into one
    refused = _installed_python(installed, "-m", "gateway", "init", str(PROJECT / "live"),
                                cwd=tmp_path)
    assert refused.returncode == 1 and "source tree" in refused.stderr
    assert not (PROJECT / "live").exists()
