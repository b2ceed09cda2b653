"""The clerk's password, the sessions held in memory, the login form's token, the limit on login
attempts and the address a request comes from.

A session exists only after the right password: a random token in an HttpOnly cookie names it,
and logging out, a restart, a new password or an idle spell ends it. Before that the same cookie
holds a random value that names nothing here: the login form carries a token signed over it, so
the form is checked without keeping anything for visitors who never log in, and no number of
them can push the clerk's session out. Nothing about a session is trusted from the browser
except its token.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import secrets
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from gateway.files import replace_file
from gateway.review.settings import Network

__all__ = [
    "ACCOUNT",
    "Attempt",
    "LoginForms",
    "LoginLimiter",
    "MIN_PASSWORD_LENGTH",
    "Session",
    "Sessions",
    "client_address",
    "hash_password",
    "read_password_hash",
    "verify_password",
    "write_password_hash",
]

MIN_PASSWORD_LENGTH = 10
ACCOUNT = "clerk"  # the page has one account
_hasher = PasswordHasher()
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


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


def _digest(text: str) -> str:
    # Tokens are stored by digest, so a memory dump or a timing of dict look-ups reveals no live
    # token; a session keeps only a digest of the password hash it was opened with.
    return hashlib.sha256(text.encode()).hexdigest()


# ---------------------------------------------------------------------- sessions

@dataclass
class Session:
    """A logged-in clerk."""

    csrf: str
    last_seen: float
    client: str = ""
    password: str = ""  # digest of the password hash the login was checked against
    flash: list[tuple[str, str]] = field(default_factory=list)  # (kind, text) shown once

    def check_csrf(self, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf, str(token))

    def opened_with(self, stored_hash: str | None) -> bool:
        """Whether the password is still the one this session logged in with: setting a new
        one (even the same words, since each hash has its own salt) ends every session."""
        return stored_hash is not None and hmac.compare_digest(self.password,
                                                               _digest(stored_hash))


class Sessions:
    """Logged-in sessions by cookie token, ended after ``idle_seconds`` without a request.

    Only a right password opens one, so ``limit`` is a backstop: past it the least recently used
    is forgotten.
    """

    def __init__(self, idle_seconds: float, clock: Callable[[], float] = time.monotonic,
                 limit: int = 1000):
        self.idle_seconds = idle_seconds
        self.clock = clock
        self.limit = limit
        self._by_key: dict[str, Session] = {}

    def __len__(self) -> int:
        return len(self._by_key)

    def new(self, *, client: str = "", password_hash: str = "") -> tuple[str, Session]:
        """A fresh session, bound to the password hash it logged in with, and its token."""
        self._expire()
        if len(self._by_key) >= self.limit:
            oldest = min(self._by_key, key=lambda k: self._by_key[k].last_seen)
            del self._by_key[oldest]
        token = secrets.token_urlsafe(32)
        session = Session(csrf=secrets.token_urlsafe(32), last_seen=self.clock(),
                          client=client, password=_digest(password_hash))
        self._by_key[_digest(token)] = session
        return token, session

    def get(self, token: str | None) -> Session | None:
        """The live session for ``token`` (its idle timer restarts), or None."""
        if not token:
            return None
        key = _digest(token)
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
            self._by_key.pop(_digest(token), None)

    def _expire(self) -> None:
        now = self.clock()
        for key in [k for k, s in self._by_key.items() if now - s.last_seen > self.idle_seconds]:
            del self._by_key[key]


# ---------------------------------------------------------------------- the login form

class LoginForms:
    """Tokens for the login form that need nothing kept on the server.

    The browser gets a random value in its cookie; the form carries the time it was drawn and an
    HMAC over both under a key that lives only in this process. A form is good for
    ``max_age`` seconds, in the browser that fetched it; a restart retires every form, as it ends
    every session.
    """

    def __init__(self, max_age: float, clock: Callable[[], float] = time.time):
        self.max_age = max_age
        self.clock = clock
        self._key = secrets.token_bytes(32)

    def new(self) -> tuple[str, str]:
        """(value for the cookie, token for the form)."""
        nonce = secrets.token_urlsafe(32)
        return nonce, self.token_for(nonce)

    def token_for(self, nonce: str) -> str:
        issued = str(int(self.clock()))
        return f"{issued}.{self._mac(nonce, issued)}"

    def check(self, nonce: str | None, token: str | None) -> bool:
        if not nonce or not token:
            return False
        issued, _, mac = str(token).partition(".")
        if not issued.isdigit() or not 0 <= self.clock() - int(issued) <= self.max_age:
            return False
        return hmac.compare_digest(mac, self._mac(nonce, issued))

    def _mac(self, nonce: str, issued: str) -> str:
        return hmac.new(self._key, f"login|{nonce}|{issued}".encode(), "sha256").hexdigest()


# ---------------------------------------------------------------------- the login limit

class Attempt:
    """One password check under way. Its slot counts as a failed login unless
    :meth:`succeeded` is called, so a check that never finishes counts against the client."""

    def __init__(self, limiter: LoginLimiter, client: str, stamp: float):
        self._limiter = limiter
        self.client = client
        self.stamp = stamp

    def succeeded(self) -> None:
        self._limiter._succeeded(self)


class LoginLimiter:
    """At most ``attempts`` failed logins per client address, and ``account_attempts`` for the
    account from every address together, within ``window`` seconds.

    :meth:`begin` takes a slot before the password is checked, in the same step as it looks at
    the count: logins sent at the same moment cannot all pass the check before any of them is
    counted, and those past the limit are refused without running argon2. The account's limit is
    what stops many addresses at once; it also makes the clerk wait while it is reached.
    """

    def __init__(self, attempts: int = 5, window: float = 900.0, account_attempts: int = 20,
                 clock: Callable[[], float] = time.monotonic):
        self.attempts = attempts
        self.account_attempts = account_attempts
        self.window = window
        self.clock = clock
        self._clients: dict[str, deque[float]] = {}
        self._account: deque[float] = deque()

    def begin(self, client: str) -> Attempt | None:
        """A slot for one password check from ``client``; None when the limit is reached (then
        :meth:`wait_seconds` says for how long)."""
        if self.wait_seconds(client):
            return None
        self._forget_old()
        stamp = self.clock()
        self._clients.setdefault(client, deque()).append(stamp)
        self._account.append(stamp)
        return Attempt(self, client, stamp)

    def wait_seconds(self, client: str) -> float:
        """0 when ``client`` may try now; else how long until it may."""
        waits = [self._wait(self._clients.get(client), self.attempts),
                 self._wait(self._account, self.account_attempts)]
        return max(waits)

    def _wait(self, tries: deque[float] | None, limit: int) -> float:
        if tries is None:
            return 0.0
        self._prune(tries)
        if len(tries) < limit:
            return 0.0
        return max(0.0, tries[-limit] + self.window - self.clock())

    def _succeeded(self, attempt: Attempt) -> None:
        # The right password clears the client's count; the account keeps the others' tries.
        self._clients.pop(attempt.client, None)
        try:
            self._account.remove(attempt.stamp)
        except ValueError:
            pass  # already out of the window

    def _prune(self, tries: deque[float]) -> None:
        cutoff = self.clock() - self.window
        while tries and tries[0] <= cutoff:
            tries.popleft()

    def _forget_old(self) -> None:
        # Each client here holds a slot of the account's, so this stays small.
        for client in list(self._clients):
            self._prune(self._clients[client])
            if not self._clients[client]:
                del self._clients[client]


# ---------------------------------------------------------------------- client addresses

_HOST_PORT = re.compile(r"^\[([0-9A-Fa-f:.]+)\](?::\d+)?$|^(\d{1,3}(?:\.\d{1,3}){3}):\d+$")


def _address(text: str) -> _Address | None:
    """``text`` as an address ("192.0.2.1", "2001:db8::1", "[2001:db8::1]:443",
    "192.0.2.1:443"), an IPv4-mapped IPv6 one as IPv4; None when it is none of these."""
    text = text.strip()
    m = _HOST_PORT.match(text)
    if m:
        text = m.group(1) or m.group(2)
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def client_address(peer: str, forwarded_for: Iterable[str],
                   trusted_proxies: Sequence[Network]) -> str:
    """The address a request comes from, as the login limit and the audit log name it.

    The direct peer, unless it is one of ``trusted_proxies``: then the right-most address in the
    ``X-Forwarded-For`` headers that is not itself a trusted proxy. Each proxy adds the address it
    saw to the right, so only the entries the trusted proxies wrote mean anything; whatever a
    client writes to their left is skipped. When an entry cannot be read the last trusted hop is
    the answer.
    """
    here = _address(peer)
    if here is None:
        return peer
    if not any(here in net for net in trusted_proxies):
        return str(here)
    hops = [hop for value in forwarded_for for hop in value.split(",") if hop.strip()]
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            break
        here = address
        if not any(here in net for net in trusted_proxies):
            break
    return str(here)
