"""The clerk's password, the sessions held in memory, and the limit on login attempts.

Sessions live only in this process: a random token in an HttpOnly cookie names one, and logging
out or a restart ends it (the clerk logs in again). Nothing about a session is trusted from the
browser except that token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from gateway.files import replace_file

__all__ = [
    "LoginLimiter",
    "Session",
    "Sessions",
    "hash_password",
    "read_password_hash",
    "verify_password",
    "write_password_hash",
    "MIN_PASSWORD_LENGTH",
]

MIN_PASSWORD_LENGTH = 10
_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` (with its own random salt)."""
    return _hasher.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def read_password_hash(path: Path) -> str | None:
    """The hash kept in ``path``; None when no password has been set yet."""
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return text or None


def write_password_hash(path: Path, stored_hash: str) -> None:
    """Replace the password file atomically, readable by its owner only."""
    replace_file(path, (stored_hash + "\n").encode("utf-8"))


# ---------------------------------------------------------------------- sessions

@dataclass
class Session:
    csrf: str
    last_seen: float
    logged_in: bool = False
    client: str = ""
    flash: list[tuple[str, str]] = field(default_factory=list)  # (kind, text) shown once

    def check_csrf(self, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf, str(token))


def _key(token: str) -> str:
    # Stored by digest so that a memory dump or a timing of dict look-ups reveals no live token.
    return hashlib.sha256(token.encode()).hexdigest()


class Sessions:
    """Sessions by cookie token, ended after ``idle_seconds`` without a request."""

    def __init__(self, idle_seconds: float, clock: Callable[[], float] = time.monotonic,
                 limit: int = 1000):
        self.idle_seconds = idle_seconds
        self.clock = clock
        self.limit = limit
        self._by_key: dict[str, Session] = {}

    def new(self, logged_in: bool = False, client: str = "") -> tuple[str, Session]:
        """A fresh session and the token for its cookie."""
        self._expire()
        if len(self._by_key) >= self.limit:  # many anonymous visits: forget the oldest
            oldest = min(self._by_key, key=lambda k: self._by_key[k].last_seen)
            del self._by_key[oldest]
        token = secrets.token_urlsafe(32)
        session = Session(csrf=secrets.token_urlsafe(32), last_seen=self.clock(),
                          logged_in=logged_in, client=client)
        self._by_key[_key(token)] = session
        return token, session

    def get(self, token: str | None) -> Session | None:
        """The live session for ``token`` (its idle timer restarts), or None."""
        if not token:
            return None
        key = _key(token)
        session = self._by_key.get(key)
        if session is None:
            return None
        now = self.clock()
        if now - session.last_seen > self.idle_seconds:
            del self._by_key[key]
            return None
        session.last_seen = now
        return session

    def end(self, token: str | None) -> None:
        if token:
            self._by_key.pop(_key(token), None)

    def _expire(self) -> None:
        now = self.clock()
        for key in [k for k, s in self._by_key.items() if now - s.last_seen > self.idle_seconds]:
            del self._by_key[key]


class LoginLimiter:
    """At most ``attempts`` failed logins per client address within ``window`` seconds."""

    def __init__(self, attempts: int = 5, window: float = 900.0,
                 clock: Callable[[], float] = time.monotonic):
        self.attempts = attempts
        self.window = window
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, client: str) -> deque[float]:
        q = self._failures.setdefault(client, deque())
        cutoff = self.clock() - self.window
        while q and q[0] <= cutoff:
            q.popleft()
        return q

    def wait_seconds(self, client: str) -> float:
        """0 when ``client`` may try now; else how long until it may."""
        q = self._recent(client)
        if len(q) < self.attempts:
            return 0.0
        return max(0.0, q[0] + self.window - self.clock())

    def failed(self, client: str) -> None:
        self._recent(client).append(self.clock())

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)
