"""Checking councillors' logins on the submission side, slowing down password guessing."""

from __future__ import annotations

import asyncio
import logging
import re
import time

from aiosmtpd.smtp import AuthResult, LoginPassword

from gateway.people.users import UsersFile

__all__ = ["FailureCounter", "check_login"]

log = logging.getLogger(__name__)

REFUSED = "535 5.7.8 Login name or password not accepted"


class FailureCounter:
    """Failed logins per client address, forgotten after ``window`` seconds without one."""

    def __init__(self, window: float = 900.0, limit: int = 10_000):
        self.window = window
        self.limit = limit
        self._seen: dict[str, tuple[int, float]] = {}

    def count(self, ip: str) -> int:
        count, last = self._seen.get(ip, (0, 0.0))
        return count if time.monotonic() - last < self.window else 0

    def record(self, ip: str) -> int:
        count = self.count(ip) + 1
        if len(self._seen) >= self.limit:  # a flood of addresses: keep only the recent ones
            cutoff = time.monotonic() - self.window
            self._seen = {k: v for k, v in self._seen.items() if v[1] >= cutoff}
        self._seen[ip] = (count, time.monotonic())
        return count

    def clear(self, ip: str) -> None:
        self._seen.pop(ip, None)


def _shown(text: str, limit: int = 100) -> str:
    return re.sub(r"[^\x21-\x7e]", "?", text)[:limit] or "unknown"


async def check_login(users: UsersFile, failures: FailureCounter, creds: LoginPassword, ip: str,
                      failure_delay: float) -> AuthResult:
    """Verify in a thread (argon2 is slow on purpose); after a failure, answer only after a
    delay that grows with the client's recent failures."""
    login = creds.login.decode("utf-8", "replace")
    password = creds.password.decode("utf-8", "replace")
    if await asyncio.to_thread(users.verify, login, password):
        failures.clear(ip)
        log.info("auth ok user=%s client=%s", login, ip)
        return AuthResult(success=True, auth_data=creds)
    count = failures.record(ip)
    delay = min(failure_delay * count, 30.0)
    log.warning("auth failed user=%s client=%s failures=%d delay=%.1fs",
                _shown(login), ip, count, delay)
    await asyncio.sleep(delay)  # slows password guessing; other clients are not held up
    return AuthResult(success=False, handled=False, message=REFUSED)
