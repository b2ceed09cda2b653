"""A network namespace joined to the host by a veth pair: clients that are not on loopback.

The gateway treats loopback specially (login without TLS, trusted by default), so tests of the
rules for strangers need a client somewhere else. ``netns`` (a pytest fixture) or
``create_netns()`` (a context manager, for scripts) builds, for one test:

    host                                     namespace gwtest-X
    gwtXh  10.231.X.1/24                     veth0  10.231.X.10, .11, .12     /24
           fd00:231:X::1/64  <--- veth --->         fd00:231:X::10 .. ::13    /64 (the host's)
           route fd00:231:X:1::/64 via fe80::2      fd00:231:X:1::10 .. ::13  /64 (another one)
           fe80::1                                  fe80::2, default routes via the host

X is claimed with a lock file in /run/lock, so parallel runs never share one, and a namespace or
veth left by a run that died (its lock no longer held) is removed the next time one is made.
Addresses are added with ``nodad`` and the veth makes no link-local address of its own, so no
address is ever tentative and binds work at once (set-up checks that too). Set-up is four ``ip``
calls, two of them ``-batch``, about 15 ms; tear-down deletes the veth (both ends and the host
route go with it) and the namespace, on every path, and kills any client a test started and
left running, about 25 ms (most of it the kernel retiring the veth).

Run clients with ``run``/``python``/``client`` from plain code and ``arun``/``apython``/
``aclient`` from async tests: the gateway under test lives in the test's own event loop, so a
blocking call there would stall the very server the client is talking to.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import ipaddress
import itertools
import json
import keyword
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

import pytest

__all__ = ["NetNs", "NetNsError", "cleanup_stale", "create_netns", "netns_fixture"]

REPO = Path(__file__).resolve().parents[1]
PYTHON = str(REPO / ".venv" / "bin" / "python") if (REPO / ".venv").is_dir() else sys.executable

NS_PREFIX = "gwtest-"             # namespace gwtest-X
IF_PATTERN = re.compile(r"gwt(\d+)h")  # host end of the veth, gwtXh
NS_PATTERN = re.compile(re.escape(NS_PREFIX) + r"(\d+)")
NS_IFNAME = "veth0"               # the namespace end
LOCK_DIR = Path("/run/lock") if os.access("/run/lock", os.W_OK) else Path("/tmp")
INDEXES = range(1, 255)           # X: the third octet of 10.231.X.0/24
DEFAULT_TIMEOUT = 30.0
_claims = itertools.count()
_MODULE = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


class NetNsError(RuntimeError):
    """Setting up or tearing down the namespace failed (the ``ip`` output says why)."""


def _ip(args: Sequence[str], batch: str | None = None) -> None:
    """Run ``ip ARGS`` (with ``-batch -`` reading ``batch`` when given); raise on failure."""
    argv = ["ip", *args, *(["-batch", "-"] if batch is not None else [])]
    done = subprocess.run(argv, input=batch, capture_output=True, text=True, timeout=10)
    if done.returncode != 0:
        raise NetNsError(f"{' '.join(argv)} failed: {done.stderr.strip()}\n{batch or ''}")


def _lock(index: int) -> TextIO | None:
    """Take the lock for index X without waiting; None if a live process holds it."""
    f = open(LOCK_DIR / f"gateway-netns-{index}.lock", "a")  # held until the NetNs closes
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        return None
    return f


def _leftovers() -> dict[int, tuple[bool, bool]]:
    """Index -> (namespace exists, host veth exists), for everything this harness names.

    Reads /run/netns (what ``ip netns list`` reads) and /sys/class/net: no process to start.
    """
    found: dict[int, tuple[bool, bool]] = {}
    with contextlib.suppress(FileNotFoundError):
        for name in os.listdir("/run/netns"):
            if m := NS_PATTERN.fullmatch(name):
                found[int(m[1])] = (True, found.get(int(m[1]), (False, False))[1])
    for name in os.listdir("/sys/class/net"):
        if m := IF_PATTERN.fullmatch(name):
            found[int(m[1])] = (found.get(int(m[1]), (False, False))[0], True)
    return found


def _remove(index: int, ns: bool = True, link: bool = True) -> None:
    """Delete the veth (both ends go) and the namespace of index X; missing ones are fine."""
    lines = ([f"link del gwt{index}h"] if link else []) + ([f"netns del {NS_PREFIX}{index}"]
                                                            if ns else [])
    if lines:
        # -force: carry on past a line that fails, so one missing half does not keep the other.
        subprocess.run(["ip", "-force", "-batch", "-"], input="\n".join(lines) + "\n",
                       capture_output=True, text=True, timeout=10)


def cleanup_stale() -> list[int]:
    """Remove namespaces and veths of this harness whose owner is gone; return their indexes."""
    removed = []
    for index, (ns, link) in sorted(_leftovers().items()):
        lock = _lock(index)
        if lock is None:
            continue  # a running test owns it
        try:
            _remove(index, ns, link)
            removed.append(index)
        finally:
            lock.close()
    return removed


class NetNs:
    """One namespace with client addresses, and ways to run programs inside it.

    Attributes: ``name`` (the namespace), ``index`` (X), ``host_if`` (host end of the veth),
    ``host_v4``/``host_v6`` (where the gateway should listen), ``client_v4``,
    ``client_v6_same64`` (in the host's /64), ``client_v6_other64`` (another /64, routed).
    """

    def __init__(self, index: int, lock: TextIO, *, n_v4: int = 3, n_v6: int = 4) -> None:
        self.index = index
        self.name = f"{NS_PREFIX}{index}"
        self.host_if = f"gwt{index}h"
        self.host_v4 = f"10.231.{index}.1"
        self.host_v6 = f"fd00:231:{index}::1"
        self.net_v4 = ipaddress.ip_network(f"10.231.{index}.0/24")
        self.net_v6_same64 = ipaddress.ip_network(f"fd00:231:{index}::/64")
        self.net_v6_other64 = ipaddress.ip_network(f"fd00:231:{index}:1::/64")
        self.client_v4 = [f"10.231.{index}.{10 + i}" for i in range(n_v4)]
        self.client_v6_same64 = [f"fd00:231:{index}::{10 + i:x}" for i in range(n_v6)]
        self.client_v6_other64 = [f"fd00:231:{index}:1::{10 + i:x}" for i in range(n_v6)]
        self._lock: TextIO | None = lock
        self._procs: list[asyncio.subprocess.Process] = []  # started by aspawn, not yet done
        self._made = False  # the namespace (and then the veth) is ours to delete
        self.closed = False

    def __repr__(self) -> str:
        return f"<NetNs {self.name} host {self.host_v4} / {self.host_v6}>"

    # ------------------------------------------------------------------ set-up and tear-down

    def _setup(self) -> None:
        h, n = self.host_if, NS_IFNAME
        if Path("/sys/class/net", h).exists():
            raise NetNsError(f"{h}: File exists (not made by a run holding our lock)")
        _ip(["netns", "add", self.name])  # alone: if the name is taken, nothing is ours yet
        self._made = True
        _ip([], "\n".join([
            f"link add {h} type veth peer name {n} netns {self.name}",
            f"link set {h} addrgenmode none",  # no automatic link-local: nothing to DAD
            f"addr add {self.host_v4}/24 dev {h}",
            f"addr add {self.host_v6}/64 dev {h} nodad",
            f"addr add fe80::1/64 dev {h} nodad",
            f"link set {h} up",
        ]) + "\n")
        lines = ["link set lo up", f"link set {n} addrgenmode none"]
        lines += [f"addr add {a}/24 dev {n}" for a in self.client_v4]
        lines += [f"addr add {a}/64 dev {n} nodad"
                  for a in self.client_v6_same64 + self.client_v6_other64]
        lines += [f"addr add fe80::2/64 dev {n} nodad", f"link set {n} up",
                  f"route add default via {self.host_v4}",
                  f"route add ::/0 via fe80::1 dev {n}"]
        _ip(["-netns", self.name], "\n".join(lines) + "\n")
        # Replies to the other /64 go back through the veth (the route needs the link up).
        _ip(["-6", "route", "add", str(self.net_v6_other64), "via", "fe80::2", "dev", h])
        self._check_no_tentative()

    def _check_no_tentative(self) -> None:
        """``nodad`` means no address waits for DAD; make sure, so the first bind works."""
        for _ in range(50):
            done = subprocess.run(
                ["ip", "-netns", self.name, "-6", "-o", "addr", "show", "tentative"],
                capture_output=True, text=True, timeout=10)
            host = subprocess.run(["ip", "-6", "-o", "addr", "show", "dev", self.host_if,
                                   "tentative"], capture_output=True, text=True, timeout=10)
            if not done.stdout.strip() and not host.stdout.strip():
                return
            time.sleep(0.1)
        raise NetNsError(f"addresses still tentative in {self.name}: {done.stdout}{host.stdout}")

    def close(self) -> None:
        """Kill what the test left running in the namespace, delete veth and namespace."""
        if self.closed:
            return
        self.closed = True
        try:
            self._kill_leftover_processes()
        finally:
            if self._made:
                _remove(self.index)
            if self._lock is not None:
                self._lock.close()
                self._lock = None
        if self._made and (Path("/run/netns", self.name).exists()
                           or Path("/sys/class/net", self.host_if).exists()):
            raise NetNsError(f"{self.name} or {self.host_if} still there after tear-down")

    def _kill_leftover_processes(self) -> None:
        running = [p for p in self._procs if p.returncode is None]
        self._procs.clear()
        if not running:
            return
        # Only pids that are ours *and* still in the namespace: never a reused pid.
        listed = subprocess.run(["ip", "netns", "pids", self.name], capture_output=True,
                                text=True, timeout=10).stdout.split()
        inside = {int(p) for p in listed if p.isdigit()}
        for p in running:
            if p.pid in inside:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, signal.SIGKILL)  # the loop's child watcher reaps it

    def __enter__(self) -> NetNs:
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # ------------------------------------------------------------------ running programs inside

    def argv(self, argv: Sequence[str]) -> list[str]:
        """``argv`` as run inside the namespace (``ip netns exec NAME ...``)."""
        return ["ip", "netns", "exec", self.name, *argv]

    def python_argv(self, module_or_code: str, *args: str) -> list[str]:
        """The venv's python with ``-m MODULE`` (a dotted name of non-keywords, like
        ``tests.netclient``) or ``-c CODE`` (anything else, like ``pass`` or ``print(1)``)."""
        is_module = _MODULE.fullmatch(module_or_code) and not any(
            keyword.iskeyword(part) for part in module_or_code.split("."))
        flag = "-m" if is_module else "-c"
        return [PYTHON, flag, module_or_code, *args]

    @staticmethod
    def python_env() -> dict[str, str]:
        """The environment for python inside: the repository first on PYTHONPATH."""
        path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
        return {**os.environ, "PYTHONPATH": path, "PYTHONDONTWRITEBYTECODE": "1"}

    def run(self, argv: Sequence[str], *, input: str | bytes | None = None,
            timeout: float = DEFAULT_TIMEOUT, env: dict[str, str] | None = None,
            check: bool = False) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside the namespace and wait (blocks: not from a running event loop
        that serves the gateway; use ``arun`` there). Output is decoded as UTF-8."""
        full = self.argv(argv)
        done = subprocess.run(full, input=_bytes(input), capture_output=True, timeout=timeout,
                              env=env, cwd=REPO)
        result = _completed(full, done.returncode, done.stdout, done.stderr)
        if check:
            result.check_returncode()
        return result

    def python(self, module_or_code: str, *args: str, input: str | bytes | None = None,
               timeout: float = DEFAULT_TIMEOUT) -> subprocess.CompletedProcess[str]:
        """Run the venv's python inside the namespace with the repository on PYTHONPATH."""
        return self.run(self.python_argv(module_or_code, *args), input=input, timeout=timeout,
                        env=self.python_env())

    def client(self, *args: str, input: str | bytes | None = None,
               timeout: float = DEFAULT_TIMEOUT) -> list[dict[str, Any]]:
        """``python -m tests.netclient ARGS`` inside; its JSON lines, parsed."""
        return _parse(self.python("tests.netclient", *args, input=input, timeout=timeout))

    async def aspawn(self, argv: Sequence[str], *, env: dict[str, str] | None = None,
                     stdin: int | None = subprocess.DEVNULL) -> asyncio.subprocess.Process:
        """Start ``argv`` inside the namespace without waiting (stdout/stderr piped).

        The process is killed at tear-down if the test leaves it running.
        """
        proc = await asyncio.create_subprocess_exec(
            *self.argv(argv), stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=env, cwd=REPO)
        self._procs.append(proc)
        return proc

    # A timeout argument (ASYNC109), not asyncio.timeout, to match ``run``: on expiry the
    # client is killed and TimeoutExpired raised with what it printed so far.
    async def arun(self, argv: Sequence[str], *, input: str | bytes | None = None,
                   timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109
                   env: dict[str, str] | None = None,
                   check: bool = False) -> subprocess.CompletedProcess[str]:
        """``run`` for async tests: the event loop goes on serving the gateway meanwhile.

        On timeout the process is killed and ``subprocess.TimeoutExpired`` raised, as ``run``.
        """
        proc = await self.aspawn(argv, env=env, stdin=None if input is None else
                                 subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(proc.communicate(_bytes(input)), timeout)
        except TimeoutError:
            proc.kill()
            out, err = await proc.communicate()
            raise subprocess.TimeoutExpired(self.argv(argv), timeout, out, err) from None
        except BaseException:  # cancelled: do not leave the client behind
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            raise
        self._procs.remove(proc)
        assert proc.returncode is not None
        result = _completed(self.argv(argv), proc.returncode, out, err)
        if check:
            result.check_returncode()
        return result

    async def apython(self, module_or_code: str, *args: str, input: str | bytes | None = None,
                      timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109
                      ) -> subprocess.CompletedProcess[str]:
        """``python`` for async tests."""
        return await self.arun(self.python_argv(module_or_code, *args), input=input,
                               timeout=timeout, env=self.python_env())

    async def aclient(self, *args: str, input: str | bytes | None = None,
                      timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109
                      ) -> list[dict[str, Any]]:
        """``client`` for async tests."""
        return _parse(await self.apython("tests.netclient", *args, input=input,
                                         timeout=timeout))


def _bytes(data: str | bytes | None) -> bytes | None:
    return data.encode() if isinstance(data, str) else data


def _completed(argv: list[str], rc: int, out: bytes | None,
               err: bytes | None) -> subprocess.CompletedProcess[str]:
    return subprocess.CompletedProcess(argv, rc, (out or b"").decode("utf-8", "replace"),
                                       (err or b"").decode("utf-8", "replace"))


def _parse(done: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    if done.returncode != 0:
        raise AssertionError(f"netclient exited {done.returncode}: {done.stderr.strip()}")
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def create_netns(*, n_v4: int = 3, n_v6: int = 4) -> NetNs:
    """Claim a free X, remove stale leftovers, build the namespace; use it with ``with``.

    ``n_v4`` client addresses in the /24, ``n_v6`` in each of the two /64s (at most 245).
    """
    if os.geteuid() != 0 or shutil.which("ip") is None:
        raise NetNsError("network namespaces need root and iproute2's ip")
    if not (1 <= n_v4 <= 245 and 1 <= n_v6 <= 0xFFF0):
        raise ValueError("n_v4 must be 1 to 245 and n_v6 1 to 65520")
    cleanup_stale()
    # Parallel workers start apart (fewer lock collisions); one worker moves on each time.
    start = (os.getpid() * 31 + next(_claims)) % len(INDEXES)
    for i in range(len(INDEXES)):
        index = INDEXES[(start + i) % len(INDEXES)]
        lock = _lock(index)
        if lock is None:
            continue
        ns = NetNs(index, lock, n_v4=n_v4, n_v6=n_v6)
        try:
            ns._setup()
        except NetNsError as e:
            ns.close()
            if "File exists" in str(e):
                continue  # someone outside our locks uses this name: try the next X
            raise
        except BaseException:
            ns.close()
            raise
        return ns
    raise NetNsError("no free namespace index (all of 10.231.1-254.0/24 are taken)")


@pytest.fixture(name="netns")
def netns_fixture() -> Iterator[NetNs]:
    """``netns``: a fresh namespace with client addresses for one test; gone afterwards, pass
    or fail. Import ``netns_fixture`` into a test module (or list ``tests.netns`` in its
    ``pytest_plugins``) and ask for ``netns``."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("network namespaces need root and iproute2's ip")
    with create_netns() as ns:
        yield ns
