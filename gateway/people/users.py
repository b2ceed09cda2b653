"""Councillors' logins for the submission side: a file of ``name:argon2-hash:addresses`` lines.

``addresses`` (comma-separated, optional) are the addresses the login may send as: its own
first, then any it may send as on someone's behalf. A line without them (written before they
were kept) sends as the login itself when that is an address, else as ``login@`` the council's
first domain.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from gateway.files import replace_file

__all__ = ["UsersFile", "default_address", "valid_username"]

_hasher = PasswordHasher()
_NAME_RE = re.compile(r"^[A-Za-z0-9._@+\-]{1,128}$")
# A hash to verify against when the user does not exist, so both cases take the same time.
_DUMMY = _hasher.hash("not a real password")


def valid_username(name: str) -> bool:
    return bool(_NAME_RE.match(name))


def default_address(name: str, council_domains: tuple[str, ...]) -> str:
    return name.lower() if "@" in name else f"{name.lower()}@{council_domains[0]}"


class UsersFile:
    def __init__(self, path: Path | None):
        self.path = Path(path) if path else None
        self._lock = threading.Lock()

    def _read(self) -> dict[str, tuple[str, tuple[str, ...]]]:
        users: dict[str, tuple[str, tuple[str, ...]]] = {}
        if self.path is None or not self.path.exists():
            return users
        for line in self.path.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, _, rest = line.partition(":")
            hashed, _, addresses = rest.partition(":")
            users[name] = (hashed, tuple(a for a in addresses.split(",") if a))
        return users

    def _write(self, users: dict[str, tuple[str, tuple[str, ...]]]) -> None:
        assert self.path is not None
        text = ("# Councillors' logins: name:argon2 hash:addresses it may send as. Manage with "
                "'council-gateway user'.\n")
        text += "".join(f"{n}:{h}:{','.join(a)}\n" if a else f"{n}:{h}\n"
                        for n, (h, a) in sorted(users.items()))
        replace_file(self.path, text.encode("utf-8"))

    def names(self) -> list[str]:
        return sorted(self._read())

    def addresses(self, name: str) -> tuple[str, ...]:
        """The addresses recorded for ``name`` (empty: none recorded, or no such login)."""
        return self._read().get(name, ("", ()))[1]

    def add(self, name: str, password: str | None,
            addresses: tuple[str, ...] | None = None) -> None:
        """Add a login or change it: a new password (None keeps it) and the addresses it may
        send as (None keeps them)."""
        if not valid_username(name):
            raise ValueError(f'"{name}" is not a valid login name (letters, digits, . _ @ + -)')
        if password is not None and len(password) < 8:
            raise ValueError("the password must be at least 8 characters long")
        for a in addresses or ():
            if "@" not in a or "," in a or ":" in a or any(c.isspace() for c in a):
                raise ValueError(f'"{a}" is not an e-mail address')
        with self._lock:
            users = self._read()
            old_hash, old_addresses = users.get(name, ("", ()))
            if password is None and not old_hash:
                raise ValueError(f"there is no login called {name}; give it a password")
            users[name] = (_hasher.hash(password) if password is not None else old_hash,
                           tuple(a.lower() for a in addresses) if addresses is not None
                           else old_addresses)
            self._write(users)

    def remove(self, name: str) -> bool:
        with self._lock:
            users = self._read()
            if name not in users:
                return False
            del users[name]
            self._write(users)
            return True

    def verify(self, name: str, password: str) -> bool:
        """Slow on purpose (argon2): call it in a thread from async code."""
        hashed = self._read().get(name, (None, ()))[0]
        try:
            return _hasher.verify(hashed or _DUMMY, password) and hashed is not None
        except (VerificationError, InvalidHashError):
            return False
