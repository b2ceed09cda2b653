"""The console script as the IT volunteer runs it: --help everywhere, run, SIGHUP, SIGTERM."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli import build_parser
from tests.conftest import write_config
from tests.helpers import make_message

ROOT = Path(__file__).parents[2]


def _commands() -> list[list[str]]:
    """Every command and sub-command path the parser knows."""
    import argparse

    out: list[list[str]] = [[]]

    def walk(parser: argparse.ArgumentParser, prefix: list[str]) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    out.append(prefix + [name])
                    walk(sub, prefix + [name])

    walk(build_parser(), [])
    return out


@pytest.mark.parametrize("words", _commands(), ids=lambda w: " ".join(w) or "(top)")
def test_every_command_has_help(words: list[str]) -> None:
    proc = subprocess.run([sys.executable, "-m", "gateway", *words, "--help"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: council-gateway")
    assert len(proc.stdout.splitlines()) >= 3


def test_check_config_ok_and_problems(tmp_path: Path) -> None:
    good = write_config(tmp_path)
    ok = subprocess.run([sys.executable, "-m", "gateway", "check-config", "--config", str(good)],
                        capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert ok.returncode == 0 and ok.stdout.startswith("OK")
    bad = tmp_path / "bad.toml"
    bad.write_text('[gateway]\ncouncil_domains = ["stanion-pc.gov.uk"]\n'
                   '[outbound]\nlisten = "127.0.0.1:99999"\n')
    proc = subprocess.run([sys.executable, "-m", "gateway", "check-config", "--config", str(bad)],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 2
    assert ('outbound.listen (line 4): "127.0.0.1:99999" is not a valid port '
            '(ports go from 1 to 65535)') in proc.stderr


def test_run_refuses_bad_config_with_status_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[gateway]\ncouncil_domains = ["stanion-pc.gov.uk"]\nhostnme = "x"\n')
    proc = subprocess.run([sys.executable, "-m", "gateway", "run", "--config", str(bad)],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 2
    assert 'gateway.hostnme (line 3): is not a setting the gateway knows' in proc.stderr


class Running:
    """The gateway as a child process; reads its log lines as they come."""

    def __init__(self, proc: asyncio.subprocess.Process):
        self.proc = proc
        self.lines: list[str] = []
        self.ports: dict[str, int] = {}

    async def wait_for_line(self, pattern: str, deadline: float = 30) -> re.Match[str]:
        for line in self.lines:
            if m := re.search(pattern, line):
                return m
        assert self.proc.stderr is not None
        async with asyncio.timeout(deadline):
            while True:
                raw = await self.proc.stderr.readline()
                if not raw:
                    raise AssertionError(f"gateway exited; log:\n{''.join(self.lines)}")
                line = raw.decode()
                self.lines.append(line)
                if m := re.search(pattern, line):
                    return m


async def _start(config: Path) -> Running:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "run", "--config", str(config), cwd=str(ROOT),
        stderr=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL)
    run = Running(proc)
    for side in ("inbound", "outbound"):
        m = await run.wait_for_line(rf"listening side={side} address=127.0.0.1:(\d+)")
        run.ports[side] = int(m.group(1))
    await run.wait_for_line("gateway ready")
    return run


async def _smtp(port: int, lines: list[bytes]) -> list[bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    replies = [await reader.readline()]
    for line in lines:
        writer.write(line)
        await writer.drain()
        if line.endswith(b"\r\n"):
            while True:
                reply = await reader.readline()
                if reply[3:4] != b"-":
                    break
            replies.append(reply)
    writer.close()
    return replies


async def test_sighup_with_bad_config_keeps_running_on_the_old_one(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    run = await _start(path)
    try:
        path.write_text(path.read_text() + "\n[nonsense\n")
        run.proc.send_signal(signal.SIGHUP)
        await run.wait_for_line("reload refused; keeping the running configuration")
        replies = await _smtp(run.ports["inbound"], [
            b"EHLO x\r\n", b"MAIL FROM:<resident@example.org>\r\n",
            b"RCPT TO:<clerk@stanion-pc.gov.uk>\r\n", b"QUIT\r\n"])
        assert replies[3].startswith(b"250 2.1.5")
        # A good config is then taken: the new council domain is accepted after the reload.
        path.write_text(path.read_text().replace("\n[nonsense\n", "").replace(
            '"stanion-pc.gov.uk"', '"stanion-pc.gov.uk", "kirkham-tc.gov.uk"'))
        run.proc.send_signal(signal.SIGHUP)
        await run.wait_for_line("configuration reloaded")
        replies = await _smtp(run.ports["inbound"], [
            b"EHLO x\r\n", b"MAIL FROM:<resident@example.org>\r\n",
            b"RCPT TO:<clerk@kirkham-tc.gov.uk>\r\n", b"QUIT\r\n"])
        assert replies[3].startswith(b"250 2.1.5")
    finally:
        run.proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(run.proc.wait(), 30) == 0


async def test_sigterm_finishes_the_message_in_flight_then_exits_0(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    run = await _start(path)
    reader, writer = await asyncio.open_connection("127.0.0.1", run.ports["inbound"])
    await reader.readline()
    for cmd in (b"EHLO x\r\n", b"MAIL FROM:<resident@example.org>\r\n",
                b"RCPT TO:<clerk@stanion-pc.gov.uk>\r\n", b"DATA\r\n"):
        writer.write(cmd)
        while (await reader.readline())[3:4] == b"-":
            pass
    data = make_message(subject="Sent during shutdown")
    writer.write(data[: len(data) // 2])
    await writer.drain()
    run.proc.send_signal(signal.SIGTERM)
    await run.wait_for_line("stopping: no new connections")
    # A new client is turned away now...
    with pytest.raises(OSError):
        await _smtp(run.ports["inbound"], [b"EHLO y\r\n"])
    # ...but the transaction already begun completes and is delivered.
    writer.write(data[len(data) // 2:] + b".\r\n")
    reply = await reader.readline()
    assert reply.startswith(b"250 2.0.0"), reply
    writer.close()
    assert await asyncio.wait_for(run.proc.wait(), 30) == 0
    files = list((tmp_path / "mailbox" / "new").iterdir())
    assert len(files) == 1 and b"Sent during shutdown" in files[0].read_bytes()
