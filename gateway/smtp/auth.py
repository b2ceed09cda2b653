"""Checking councillors' logins on the submission side.

Before the password is checked, :class:`~gateway.smtp.logins.LoginGuard` says whether the
client's network or the account is locked; a failure is counted across connections and answered
only after a delay that grows with the network's recent failures. Logging in on behalf of
another login (a PLAIN authorisation identity that is not the login) is refused.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import TYPE_CHECKING

from aiosmtpd.smtp import AuthResult, LoginPassword

from gateway.audit import AuditLog
from gateway.people.users import UsersFile
from gateway.smtp.logins import LoginGuard, network_of

if TYPE_CHECKING:
    from gateway.metrics.registry import Metrics

__all__ = ["check_login"]

log = logging.getLogger(__name__)

REFUSED = "535 5.7.8 Login name or password not accepted"
NOT_AS_ANOTHER = "535 5.7.8 Logging in on behalf of another login is not allowed"


def _shown(text: str, limit: int = 100) -> str:
    return re.sub(r"[^\x21-\x7e]", "?", text)[:limit] or "unknown"


async def check_login(users: UsersFile, guard: LoginGuard, creds: LoginPassword, ip: str,
                      failure_delay: float, audit: AuditLog, authzid: bytes = b"", *,
                      metrics: Metrics | None = None) -> AuthResult:
    login = creds.login.decode("utf-8", "replace")
    if authzid and authzid != creds.login:
        log.warning("auth refused user=%s client=%s: asked to act as %s", _shown(login), ip,
                    _shown(authzid.decode("utf-8", "replace")))
        if metrics:
            metrics.login_failed("as-another")
        return AuthResult(success=False, handled=False, message=NOT_AS_ANOTHER)
    locked = guard.refusal(ip, login)
    if locked:
        log.warning("auth refused user=%s client=%s network=%s: locked", _shown(login), ip,
                    network_of(ip))
        if metrics:
            metrics.login_failed("locked")
        return AuthResult(success=False, handled=False, message=locked)
    password = creds.password.decode("utf-8", "replace")
    if await asyncio.to_thread(users.verify, login, password):
        guard.succeeded(ip)
        log.info("auth ok user=%s client=%s", login, ip)
        return AuthResult(success=True, auth_data=creds)
    new_locks = guard.failed(ip, login)
    if metrics:
        metrics.login_failed("password")
    count = guard.failures_from(ip)
    delay = min(failure_delay * count, 30.0)
    log.warning("auth failed user=%s client=%s failures=%d delay=%.1fs", _shown(login), ip,
                count, delay)
    for lock in new_locks:
        log.warning("login lock: %s after repeated failures (last from %s)", lock, ip)
        audit.write({"event": "login-lock", "locked": lock, "client": ip,
                     "user": _shown(login)})
        if metrics:
            metrics.login_locked(lock)
    await asyncio.sleep(delay)  # slows password guessing; other clients are not held up
    return AuthResult(success=False, handled=False, message=REFUSED)
