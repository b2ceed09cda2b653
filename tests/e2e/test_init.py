"""``council-gateway init DIR`` as the IT volunteer runs it: each command a separate process,
started from a folder that is neither DIR nor the checkout."""

from __future__ import annotations

import asyncio
import json
import signal
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

from gateway.commands.init import FOLDERS, set_value
from tests.e2e.test_console import Running, _smtp
from tests.fixtures_clamd import ClamdInstance
from tests.helpers import make_message

ROOT = Path(__file__).resolve().parents[2]


def _gateway(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=60)


def _walk_strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _walk_strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _walk_strings(v)]
    return []


def test_init_writes_a_config_check_config_accepts(tmp_path: Path) -> None:
    live, elsewhere = tmp_path / "live", tmp_path / "elsewhere"
    elsewhere.mkdir()
    made = _gateway("init", str(live), cwd=elsewhere)
    assert made.returncode == 0, made.stderr
    config = live / "gateway.toml"
    assert f"Wrote {config}" in made.stdout

    checked = _gateway("check-config", "--config", str(config), cwd=elsewhere)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith(f"OK: {config}")
    assert "other users of this machine can read" not in checked.stdout
    assert "probably not what you meant" not in checked.stdout  # the page is off: no warning

    # every folder there, private; the files to edit copied; nothing points outside DIR
    assert stat.S_IMODE(live.stat().st_mode) == 0o700
    for name in FOLDERS:
        assert stat.S_IMODE((live / name).stat().st_mode) == 0o700, name
    for name in ("footer.txt", "footer.html", "known-senders.txt"):
        assert stat.S_IMODE((live / "config" / name).stat().st_mode) == 0o600
    assert (live / "config" / "footer.txt").read_bytes() == (
        ROOT / "config" / "footer.txt").read_bytes()
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    doc = tomllib.loads(config.read_text())
    paths = [s.removeprefix("maildir:") for s in _walk_strings(doc)
             if s.startswith(("/", "maildir:"))]
    assert len(paths) >= 11
    assert all(Path(p).is_relative_to(live) for p in paths), paths
    assert doc["clamav"]["address"] == "unix:/run/clamav/clamd.ctl"


def test_init_never_overwrites_a_config(tmp_path: Path) -> None:
    live = tmp_path / "live"
    assert _gateway("init", str(live), cwd=tmp_path).returncode == 0
    config = live / "gateway.toml"
    config.write_text(config.read_text() + "\n# my own change\n")
    (live / "config" / "footer.txt").write_text("Our own footer\n")
    before = config.read_bytes()
    again = _gateway("init", str(live), cwd=tmp_path)
    assert again.returncode == 1
    assert "already exists; init never overwrites a config" in again.stderr
    assert config.read_bytes() == before
    assert (live / "config" / "footer.txt").read_text() == "Our own footer\n"


def test_init_with_the_config_elsewhere_keeps_the_footer_files_it_finds(tmp_path: Path) -> None:
    live, etc = tmp_path / "var-lib", tmp_path / "etc" / "council-gateway" / "gateway.toml"
    (live / "config").mkdir(parents=True)
    (live / "config" / "footer.txt").write_text("Our own footer\n")
    made = _gateway("init", str(live), "--config", str(etc), "--clamav",
                    "tcp://127.0.0.1:3310", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert "Kept as they were: " + str(live / "config" / "footer.txt") in made.stdout
    assert (live / "config" / "footer.txt").read_text() == "Our own footer\n"
    doc = tomllib.loads(etc.read_text())
    assert doc["clamav"]["address"] == "tcp://127.0.0.1:3310"
    assert "stream_max_length" not in doc["clamav"]
    assert doc["quarantine"]["path"] == str(live / "quarantine")
    checked = _gateway("check-config", "--config", str(etc), cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr


def test_init_refuses_the_source_tree(tmp_path: Path) -> None:
    refused = _gateway("init", str(ROOT / "live"), cwd=tmp_path)
    assert refused.returncode == 1
    assert "inside the gateway's source tree" in refused.stderr
    assert not (ROOT / "live").exists()


async def test_a_gateway_run_from_the_init_config_keeps_everything_in_dir(
        tmp_path: Path, clamd: ClamdInstance) -> None:
    live, elsewhere = tmp_path / "live", tmp_path / "elsewhere"
    elsewhere.mkdir()
    made = _gateway("init", str(live), "--clamav", clamd.address, cwd=elsewhere)
    assert made.returncode == 0, made.stderr
    config = live / "gateway.toml"
    text = config.read_text()
    for section in ("inbound", "outbound"):
        text = set_value(text, section, "listen", '"127.0.0.1:0"')
    text = set_value(text, "dns", "nameservers", '["127.0.0.1:9"]')  # answers nothing, at once
    config.write_text(text)

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "run", "--config", str(config), cwd=str(elsewhere),
        stderr=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL)
    run = Running(proc)
    try:
        m = await run.wait_for_line(r"listening side=inbound address=127.0.0.1:(\d+)")
        await run.wait_for_line("gateway ready")
        data = make_message(subject="Bench by the pond")
        replies = await _smtp(int(m.group(1)), [
            b"EHLO resident.example.org\r\n", b"MAIL FROM:<resident@example.org>\r\n",
            b"RCPT TO:<clerk@stanion-pc.gov.uk>\r\n", b"DATA\r\n", data + b".\r\n",
            b"QUIT\r\n"])
        assert replies[5].startswith(b"250"), replies
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    stored = [p for folder in ("mailbox", "quarantine") if (live / folder / "new").is_dir()
              for p in (live / folder / "new").iterdir()]
    assert len(stored) == 1 and b"Bench by the pond" in stored[0].read_bytes()
    [line] = (live / "logs" / "audit.jsonl").read_text().splitlines()
    assert json.loads(line)["subject"] == "Bench by the pond"
    assert list(elsewhere.iterdir()) == []  # nothing written where it was started
