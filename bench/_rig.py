"""What the message-sending benchmarks share: machine facts, percentiles, a recording sink with a
DNS stub beside it, and the gateway as its own process (``python -m gateway run``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w
from aiosmtpd.smtp import SMTP as AioSMTP

from gateway.smtp.datalines import REFUSALS, read_data
from gateway.smtp.protocol import begin_data

__all__ = ["CLERK", "DOMAIN", "MIB", "RESIDENT", "ROOT", "GatewayProcess", "Options", "Sink",
           "clamd_version", "cpu_model", "free_port", "gateway", "gateway_config", "median",
           "package_version", "percentile", "proc_status", "read_reply", "revision", "spread",
           "wire"]

ROOT = Path(__file__).resolve().parents[1]
MIB = 1024 * 1024
DOMAIN = "stanion-pc.gov.uk"
RESIDENT = "resident@example.org"
CLERK = f"clerk@{DOMAIN}"


# ---------------------------------------------------------------------------- machine facts

def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def clamd_version() -> str:
    clamd = shutil.which("clamd") or "/usr/sbin/clamd"
    try:
        out = subprocess.run([clamd, "--version"], capture_output=True, text=True, timeout=10)
        return out.stdout.strip().split("/")[0]
    except (OSError, subprocess.SubprocessError):
        return "?"


def revision(tree: Path = ROOT) -> str:
    """The commit measured, and whether the work tree differs from it (read-only git)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=tree,
                              capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=tree, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "?"
    return (head or "?") + (" with uncommitted changes" if dirty.strip() else "")


def package_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(name)
    except PackageNotFoundError:
        return "?"


# ---------------------------------------------------------------------------- statistics

def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), nearest rank: the value at or below which q % lie."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil(n q / 100)
    return ordered[int(rank) - 1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def spread(values: Sequence[float], fmt: str = "{:.0f}") -> str:
    """The median, and the range when there was more than one run."""
    if not values:
        return "–"
    mid = fmt.format(median(values))
    if len(values) == 1:
        return mid
    lo, hi = fmt.format(min(values)), fmt.format(max(values))
    return mid if lo == hi else f"{mid} ({lo}–{hi})"


# ---------------------------------------------------------------------------- the next hop

class _ServfailDns(asyncio.DatagramProtocol):
    """Answers every DNS query at once with SERVFAIL: each SPF, DKIM and DMARC look-up fails
    as "unknown" (temperror) without waiting. (A closed port does not do that: the resolver's
    UDP socket is not told, so every look-up waits out its whole timeout.)"""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        import dns.exception
        import dns.message
        import dns.rcode
        try:
            response = dns.message.make_response(dns.message.from_wire(data))
        except dns.exception.DNSException:
            return
        response.set_rcode(dns.rcode.SERVFAIL)
        self.transport.sendto(response.to_wire(), addr)  # type: ignore[attr-defined]


class _BulkDataSMTP(AioSMTP):
    """aiosmtpd with DATA read in bulk, by the gateway's reader: aiosmtpd's own reads a line at
    a time in Python, and a sink that takes seconds over a message of a million short lines
    (holding this process's interpreter lock, which the clients' timing loop needs) would be
    what a benchmark of such messages measured."""

    async def smtp_DATA(self, arg: str) -> None:
        if not await begin_data(self, arg):
            return
        assert self.envelope is not None
        read = await read_data(self._reader, line_limit=self.line_length_limit,
                               size_limit=self.data_size_limit)
        if read.problem is not None:
            await self.push(REFUSALS[read.problem])
        else:
            self.envelope.content = self.envelope.original_content = read.content
            await self.push(await self._call_handler_hook("DATA"))
        self._set_post_data_state()  # type: ignore[no-untyped-call]


class Sink:
    """A recording SMTP sink (aiosmtpd, DATA read in bulk) on its own event loop in a thread of
    this process, so receiving large messages does not hold up the clients' timing loop. It
    keeps counts, not messages. The same loop runs the DNS stub that fails every look-up at
    once."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="sink", daemon=True)
        self.port = 0
        self.dns_port = 0
        self.received = 0
        self.bytes = 0
        self.without_trace = 0
        self._server: asyncio.base_events.Server | None = None
        self._dns: asyncio.DatagramTransport | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        data = envelope.original_content or b""
        self.received += 1
        self.bytes += len(data)
        if b"X-Council-Gateway:" not in data[:65536]:
            self.without_trace += 1
        return "250 2.0.0 Stored"

    def start(self) -> None:
        self.thread.start()

        async def serve() -> int:
            self._server = await self.loop.create_server(
                lambda: _BulkDataSMTP(self, hostname="sink.test", enable_SMTPUTF8=True,
                                      data_size_limit=64 * MIB),
                host="127.0.0.1", port=0)
            return int(self._server.sockets[0].getsockname()[1])
        self.port = asyncio.run_coroutine_threadsafe(serve(), self.loop).result(10)

        async def dns() -> int:
            transport, _ = await self.loop.create_datagram_endpoint(
                _ServfailDns, local_addr=("127.0.0.1", 0))
            self._dns = transport
            return int(transport.get_extra_info("sockname")[1])
        self.dns_port = asyncio.run_coroutine_threadsafe(dns(), self.loop).result(10)

    def stop(self) -> None:
        if self._server is not None:
            self.loop.call_soon_threadsafe(self._server.close)
        if self._dns is not None:
            self.loop.call_soon_threadsafe(self._dns.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)



# ---------------------------------------------------------------------------- SMTP wire

async def read_reply(reader: asyncio.StreamReader) -> tuple[int, str]:
    lines: list[str] = []
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("connection closed" + (f" after {lines[-1]!r}" if lines
                                                         else ""))
        lines.append(line.decode("utf-8", "replace").rstrip("\r\n"))
        if line[3:4] != b"-":
            break
    last = lines[-1]
    try:
        code = int(last[:3])
    except ValueError:
        code = 0
    return code, last


def wire(data: bytes) -> bytes:
    """A message ready for DATA: CRLF at the end, lines starting with a dot doubled."""
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    data = data.replace(b"\r\n.", b"\r\n..")
    return b"." + data if data.startswith(b".") else data



# ---------------------------------------------------------------------------- the gateway

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def gateway_config(root: Path, sink_port: int, dns_port: int, clamd_address: str,
                   in_port: int, out_port: int) -> dict[str, Any]:
    """The shipped defaults except: loopback ports, everything under ``root``, the sink as next
    hop, DNS that fails at once, and junk tagged rather than held (so every message that passes
    the checks is delivered, and the sink sees it)."""
    return {
        "gateway": {"council_domains": [DOMAIN], "hostname": f"gw.{DOMAIN}",
                    "max_message_size": "25MiB", "audit_log": str(root / "logs" / "audit.jsonl")},
        "inbound": {"listen": f"127.0.0.1:{in_port}",
                    "deliver_to": f"smtp://127.0.0.1:{sink_port}"},
        "outbound": {"listen": f"127.0.0.1:{out_port}",
                     "deliver_to": f"smtp://127.0.0.1:{sink_port}",
                     "trusted_networks": ["127.0.0.0/8"], "users_file": str(root / "users"),
                     "login_locks_file": str(root / "state" / "login-locks.json")},
        "quarantine": {"path": str(root / "quarantine")},
        "senders": {"file": str(root / "known-senders.txt"),
                    "learned_file": str(root / "learned-senders.txt"),
                    "blocked_file": str(root / "blocked-senders.txt")},
        "footer": {"text_file": str(ROOT / "config" / "footer.txt"),
                   "html_file": str(ROOT / "config" / "footer.html")},
        "dns": {"nameservers": [f"127.0.0.1:{dns_port}"], "timeout": 0.5},
        "clamav": {"address": clamd_address},
        "policy": {"junk": "tag"},
    }


def proc_status(pid: int) -> dict[str, int]:
    """The Vm* lines of /proc/PID/status, in bytes."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Vm"):
                key, value = line.split(":", 1)
                out[key] = int(value.split()[0]) * 1024
    return out


def cpu_seconds(pid: int) -> float:
    """User and system CPU time PID and the processes it started have used so far, all their
    threads (/proc/PID/stat; Haraka's command starts the server as a child)."""
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError), open(f"/proc/{entry}/stat") as f:
                stats[int(entry)] = f.read().rpartition(")")[2].split()
    tree, grew = {pid}, True
    while grew:
        more = {p for p, fields in stats.items() if int(fields[1]) in tree} - tree
        tree |= more
        grew = bool(more)
    ticks = sum(int(stats[p][11]) + int(stats[p][12]) for p in tree if p in stats)
    return ticks / os.sysconf("SC_CLK_TCK")


@dataclass
class Options:
    clamd_address: str
    sink: Sink
    py_spy: Path | None = None
    memray: Path | None = None
    verbose: bool = False
    py_spy_gil: bool = False
    cprofile: Path | None = None  # run the gateway under cProfile; statistics go here
    source: Path = ROOT  # the source tree the gateway runs from (another revision's, to compare)


class GatewayProcess:
    """``python -m gateway run`` with its own config in a temporary directory."""

    def __init__(self, opts: Options, label: str,
                 overrides: dict[str, dict[str, Any]] | None = None):
        self.opts = opts
        self.label = label
        self.tmp = Path(tempfile.mkdtemp(prefix="bench-hostile-"))
        self.in_port, self.out_port = free_port(), free_port()
        self.conf = self.tmp / "gateway.toml"
        config = gateway_config(self.tmp, opts.sink.port, opts.sink.dns_port,
                                opts.clamd_address, self.in_port, self.out_port)
        for section, values in (overrides or {}).items():
            config.setdefault(section, {}).update(values)
        self.conf.write_text(tomli_w.dumps(config), encoding="utf-8")
        self.log = self.tmp / "gateway.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.spy: subprocess.Popen[bytes] | None = None
        self.hwm_reset = True
        self.audit: list[dict[str, Any]] = []  # the gateway's audit records, read at stop()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def start(self) -> None:
        self._spawn()
        for port in (self.in_port, self.out_port):
            await self._wait_for_greeting(port, 60)
        if self.opts.py_spy is not None:
            self._spawn_spy(self.opts.py_spy)
        if self.opts.verbose:
            print(f"  [{self.label}] gateway pid {self.pid}, MX {self.in_port}, submission "
                  f"{self.out_port}, {self.tmp}", file=sys.stderr)

    def _spawn(self) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            p for p in (str(self.opts.source), os.environ.get("PYTHONPATH", "")) if p)}
        cmd = [sys.executable, "-m", "gateway", "run", "--config", str(self.conf)]
        if self.opts.memray is not None:
            self.opts.memray.mkdir(parents=True, exist_ok=True)
            out = self.opts.memray / f"{self.label}.bin"
            cmd = [sys.executable, "-m", "memray", "run", "--force", "-q", "-o", str(out),
                   "-m", *cmd[2:]]
        elif self.opts.cprofile is not None:
            self.opts.cprofile.mkdir(parents=True, exist_ok=True)
            out = self.opts.cprofile / f"{self.label}.prof"
            cmd = [sys.executable, "-m", "cProfile", "-o", str(out), "-m", *cmd[2:]]
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(cmd, cwd=self.tmp, env=env, stdout=log, stderr=log)

    def _spawn_spy(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.spy = subprocess.Popen(
            [shutil.which("py-spy") or "py-spy", "record", "--pid", str(self.pid), "--rate",
             "200", "--format", "raw", "--threads", "--nonblocking",
             *(["--gil"] if self.opts.py_spy_gil else []),
             "-o", str(folder / f"{self.label}.txt")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    async def _wait_for_greeting(self, port: int, deadline: float) -> None:
        end = time.monotonic() + deadline
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"the gateway exited with {self.proc.returncode}:\n"
                                   + self.log.read_text(errors="replace")[-3000:])
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                line = await asyncio.wait_for(reader.readline(), 5)
                writer.write(b"QUIT\r\n")
                writer.close()
                if line.startswith(b"220"):
                    return
            except (OSError, TimeoutError):
                pass
            if time.monotonic() > end:
                raise RuntimeError("the gateway did not greet in time:\n"
                                   + self.log.read_text(errors="replace")[-3000:])
            await asyncio.sleep(0.05)  # polling interval of a deadline-bound wait

    def rss(self) -> int:
        return proc_status(self.pid)["VmRSS"]

    def hwm(self) -> int:
        return proc_status(self.pid)["VmHWM"]

    def reset_hwm(self) -> None:
        """Reset the high-water mark to the current RSS (Linux: clear_refs 5)."""
        try:
            with open(f"/proc/{self.pid}/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            self.hwm_reset = False  # then only the sampled maximum counts

    async def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.proc.wait, 40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                await asyncio.to_thread(self.proc.wait, 10)
        if self.spy is not None:
            try:
                await asyncio.to_thread(self.spy.wait, 30)
            except subprocess.TimeoutExpired:
                self.spy.send_signal(signal.SIGINT)
                await asyncio.to_thread(self.spy.wait, 30)
        with contextlib.suppress(OSError):
            for line in (self.tmp / "logs" / "audit.jsonl").read_text().splitlines():
                with contextlib.suppress(ValueError):
                    self.audit.append(json.loads(line))
        shutil.rmtree(self.tmp, ignore_errors=True)

    def records(self, subject: str) -> list[dict[str, Any]]:
        """The audit records of the messages with this subject (junk's tag prefix allowed, and
        the rest of a subject too long for the audit record to keep whole)."""
        return [r for r in self.audit if r.get("event") == "message"
                and re.match(r"(\[[^]]*\] )?" + re.escape(subject) + r"(?!\w)",
                             str(r.get("subject", "")))]

    def errors(self) -> list[str]:
        """Tracebacks and errors the gateway logged (for the report)."""
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return []
        return [line for line in text.splitlines()
                if " ERROR " in line or "Traceback" in line or "CRITICAL" in line]


@contextlib.asynccontextmanager
async def gateway(opts: Options, label: str,
                  overrides: dict[str, dict[str, Any]] | None = None
                  ) -> AsyncIterator[GatewayProcess]:
    """A fresh gateway process; ``overrides`` replaces keys of :func:`gateway_config`'s
    sections (e.g. ``{"inbound": {"filters": ["antivirus", "trace"]}}``)."""
    gw = GatewayProcess(opts, label, overrides)
    try:
        await gw.start()
        yield gw
    finally:
        await gw.stop()


