"""Councillors' logins for the submission side: a file of ``name:argon2-hash`` lines."""

from __future__ import annotations

import re
import threading
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from gateway.files import replace_file

__all__ = ["UsersFile", "valid_username"]

_hasher = PasswordHasher()
_NAME_RE = re.compile(r"^[A-Za-z0-9._@+\-]{1,128}$")
# A hash to verify against when the user does not exist, so both cases take the same time.
_DUMMY = _hasher.hash("not a real password")


def valid_username(name: str) -> bool:
    return bool(_NAME_RE.match(name))


class UsersFile:
    def __init__(self, path: Path | None):
        self.path = Path(path) if path else None
        self._lock = threading.Lock()

    def _read(self) -> dict[str, str]:
        users: dict[str, str] = {}
        if self.path is None or not self.path.exists():
            return users
        for line in self.path.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, _, hashed = line.partition(":")
            users[name] = hashed
        return users

    def _write(self, users: dict[str, str]) -> None:
        assert self.path is not None
        text = "# Councillors' logins: name:argon2 hash. Manage with 'council-gateway user'.\n"
        text += "".join(f"{n}:{h}\n" for n, h in sorted(users.items()))
        replace_file(self.path, text.encode("utf-8"))

    def names(self) -> list[str]:
        return sorted(self._read())

    def add(self, name: str, password: str) -> None:
        if not valid_username(name):
            raise ValueError(f'"{name}" is not a valid login name (letters, digits, . _ @ + -)')
        if len(password) < 8:
            raise ValueError("the password must be at least 8 characters long")
        with self._lock:
            users = self._read()
            users[name] = _hasher.hash(password)
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
        hashed = self._read().get(name)
        try:
            return _hasher.verify(hashed or _DUMMY, password) and hashed is not None
        except (VerificationError, InvalidHashError):
            return False
