"""Login protection that counts across connections: per client network and per account.

A network is an IPv4 address or an IPv6 /64 (one customer's range: rotating addresses inside it
does not help). Defaults: 10 failures from one network within 15 minutes lock logging in from
that network for 15 minutes, a right password included; 20 failures against one account within
an hour lock that account for an hour, but only for networks that have failed recently, so an
attacker cannot lock a councillor out of their own office.

Counts live in memory. Locks are also written to a small JSON file so that
``council-gateway user unlock NAME`` (another process) can end one: the guard reads the file
again whenever it changes.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gateway.files import replace_file

__all__ = ["Limits", "LoginGuard", "network_of", "unlock"]

log = logging.getLogger(__name__)


def network_of(ip: str) -> str:
    """The unit failures are counted in: ``192.0.2.7``, or ``2001:db8:1:2::/64``."""
    try:
        addr = ipaddress.ip_address(ip.split("%")[0])
    except ValueError:
        return ip
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        return str(ipaddress.ip_network(f"{addr}/64", strict=False))
    return str(addr)


@dataclass(frozen=True)
class Limits:
    network_failures: int = 10
    network_window: float = 900.0
    network_lock: float = 900.0
    account_failures: int = 20
    account_window: float = 3600.0
    account_lock: float = 3600.0
    tracked: int = 10_000  # networks and accounts remembered at most (a flood keeps the recent)


@dataclass
class _Locks:
    networks: dict[str, float] = field(default_factory=dict)  # network -> locked until
    accounts: dict[str, float] = field(default_factory=dict)  # account -> locked until


def _read_locks(path: Path | None) -> _Locks:
    if path is None:
        return _Locks()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return _Locks({str(k): float(v) for k, v in data.get("networks", {}).items()},
                      {str(k): float(v) for k, v in data.get("accounts", {}).items()})
    except (OSError, ValueError, AttributeError, TypeError):
        return _Locks()


def _write_locks(path: Path, locks: _Locks, now: float) -> None:
    data = {"networks": {k: v for k, v in locks.networks.items() if v > now},
            "accounts": {k: v for k, v in locks.accounts.items() if v > now}}
    replace_file(path, (json.dumps(data, indent=1, sort_keys=True) + "\n").encode())


def unlock(path: Path, name: str) -> bool:
    """End the lock on an account or a network (an address is read as its network)."""
    locks = _read_locks(path)
    try:
        key = network_of(name) if ipaddress.ip_network(name, strict=False) else name
    except ValueError:
        key = name
    found = locks.accounts.pop(name, None) is not None
    found = locks.networks.pop(key, None) is not None or found
    if found:
        _write_locks(path, locks, time.time())
    return found


class LoginGuard:
    """Decides whether a login may be tried, and counts what happened."""

    def __init__(self, path: Path | None, limits: Limits = Limits(),
                 clock: Callable[[], float] = time.time):
        self.path = path
        self.limits = limits
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}  # network or "@account" -> times
        self._locks = _read_locks(path)
        self._stamp = self._file_stamp()

    def _file_stamp(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path) if self.path else None
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size) if st else None

    def _refresh(self) -> None:
        stamp = self._file_stamp()
        if stamp == self._stamp:
            return
        fresh = _read_locks(self.path)
        for name in set(self._locks.accounts) - set(fresh.accounts):
            self._failures.pop("@" + name, None)  # unlocked by hand: start counting again
        for net in set(self._locks.networks) - set(fresh.networks):
            self._failures.pop(net, None)
        self._locks, self._stamp = fresh, stamp

    def _recent(self, key: str, window: float) -> int:
        times = self._failures.get(key)
        if not times:
            return 0
        cutoff = self.clock() - window
        while times and times[0] < cutoff:
            times.popleft()
        return len(times)

    def refusal(self, ip: str, account: str) -> str | None:
        """Why logging in is refused now (a sentence), or None."""
        self._refresh()
        now = self.clock()
        net = network_of(ip)
        if self._locks.networks.get(net, 0) > now:
            return ("454 4.7.0 Too many failed logins from your network; logging in is "
                    "paused for a while")
        if self._locks.accounts.get(account, 0) > now \
                and self._recent(net, self.limits.network_window):
            return ("454 4.7.0 Too many failed logins for this account; it is locked for "
                    "networks that failed recently. Try from a network you have logged in "
                    "from before, or ask the IT volunteer")
        return None

    def failed(self, ip: str, account: str) -> list[str]:
        """Count a failure; returns the locks it set (for the log and the audit)."""
        now = self.clock()
        net = network_of(ip)
        if len(self._failures) >= self.limits.tracked:
            self._failures = {k: v for k, v in self._failures.items()
                              if v and v[-1] > now - self.limits.account_window}
        set_now = []
        for key in (net, "@" + account):
            self._failures.setdefault(key, deque()).append(now)
        if self._recent(net, self.limits.network_window) >= self.limits.network_failures \
                and self._locks.networks.get(net, 0) <= now:
            self._locks.networks[net] = now + self.limits.network_lock
            set_now.append(f"network {net}")
        if self._recent("@" + account, self.limits.account_window) \
                >= self.limits.account_failures and self._locks.accounts.get(account, 0) <= now:
            self._locks.accounts[account] = now + self.limits.account_lock
            set_now.append(f"account {account}")
        if set_now and self.path is not None:
            try:
                _write_locks(self.path, self._locks, now)
                self._stamp = self._file_stamp()
            except OSError as e:
                log.error("login locks file %s not writable: %s", self.path, e)
        return set_now

    def succeeded(self, ip: str) -> None:
        self._failures.pop(network_of(ip), None)

    def failures_from(self, ip: str) -> int:
        return self._recent(network_of(ip), self.limits.network_window)
