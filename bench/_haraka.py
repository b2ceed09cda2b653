"""Haraka for the side-by-side benchmark (``bench/peer.py``): installed from npm into a bench
folder (never by the tests), configured as a virus-scanning relay to the sink, one process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

from bench._rig import DOMAIN, ROOT, free_port
from gateway.adapters.clamd import parse_address

__all__ = ["HARAKA_DIR", "HarakaProcess", "haraka", "install_haraka"]

HARAKA_DIR = ROOT / "build" / "haraka"
HARAKA_PACKAGES = ("Haraka@3", "haraka-plugin-clamd")


def haraka_bin(folder: Path) -> Path:
    return folder / "node_modules" / "Haraka" / "bin" / "haraka"


def install_haraka(folder: Path) -> str:
    """Haraka and its clamd plugin from npm into ``folder`` (once); their versions."""
    if not haraka_bin(folder).exists() or not (
            folder / "node_modules" / "haraka-plugin-clamd").exists():
        folder.mkdir(parents=True, exist_ok=True)
        print(f"installing {' '.join(HARAKA_PACKAGES)} from npm into {folder}", file=sys.stderr)
        subprocess.run(["npm", "install", "--prefix", str(folder), "--no-audit", "--no-fund",
                        "--loglevel=error", *HARAKA_PACKAGES], check=True,
                       stdout=subprocess.DEVNULL)
    versions = []
    for name in ("Haraka", "haraka-plugin-clamd"):
        meta = json.loads((folder / "node_modules" / name / "package.json").read_text())
        versions.append(f"{name} {meta['version']}")
    return ", ".join(versions)


class HarakaProcess:
    """``haraka -c DIR`` with a config made by ``haraka -i DIR`` and then rewritten: loopback
    port, the domain in host_list, clamd and smtp_forward to the sink, log level warn."""

    def __init__(self, folder: Path, sink_port: int, clamd_address: str):
        self.folder = folder
        self.tmp = Path(tempfile.mkdtemp(prefix="bench-haraka-"))
        self.conf = self.tmp / "haraka"
        self.port = free_port()
        self.sink_port = sink_port
        self.clamd = parse_address(clamd_address)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = self.tmp / "haraka.log"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def configure(self) -> None:
        node = shutil.which("node") or "node"
        subprocess.run([node, str(haraka_bin(self.folder)), "-i", str(self.conf)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        config = self.conf / "config"
        files = {
            "plugins": "rcpt_to.in_host_list\nclamd\nqueue/smtp_forward\n",
            "host_list": f"{DOMAIN}\n",
            "me": "haraka.bench.test\n",
            "smtp.ini": f"[main]\nlisten=127.0.0.1:{self.port}\n",
            "log.ini": "[main]\nlevel=warn\ntimestamps=false\n",
            "smtp_forward.ini": f"host=127.0.0.1\nport={self.sink_port}\nenable_tls=false\n",
            "clamd.ini": f"[main]\nclamd_socket={self.clamd.host}:{self.clamd.port}\n",
        }
        for name, text in files.items():
            (config / name).write_text(text, encoding="utf-8")

    def _spawn(self) -> None:
        self.configure()
        node = shutil.which("node") or "node"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen([node, str(haraka_bin(self.folder)), "-c",
                                          str(self.conf)], stdout=log, stderr=log)

    async def start(self) -> None:
        self._spawn()
        assert self.proc is not None
        end = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("Haraka exited:\n" + self.log.read_text(errors="replace"))
            with contextlib.suppress(OSError):
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
                line = await asyncio.wait_for(reader.readline(), 5)
                writer.write(b"QUIT\r\n")
                writer.close()
                if line.startswith(b"220"):
                    return
            if time.monotonic() > end:
                raise RuntimeError("Haraka did not greet in time")
            await asyncio.sleep(0.05)  # polling interval of a deadline-bound wait

    async def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.proc.wait, 30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                await asyncio.to_thread(self.proc.wait, 10)
        shutil.rmtree(self.tmp, ignore_errors=True)


@contextlib.asynccontextmanager
async def haraka(folder: Path, sink_port: int, clamd_address: str
                 ) -> AsyncIterator[HarakaProcess]:
    proc = HarakaProcess(folder, sink_port, clamd_address)
    try:
        await proc.start()
        yield proc
    finally:
        await proc.stop()
