"""Which of the gateway's secrets and mail folders other users of the machine could read.

check-config and ``run`` report them (they are the operator's to fix: the gateway never changes
the modes of files it did not create). Held mail, delivered mail, the audit log and confidential
material are the council's; keys and password hashes would let someone send as it.
"""

from __future__ import annotations

import stat
from pathlib import Path

from gateway.config import Config
from gateway.filters.dkim import DkimConfig
from gateway.review.settings import ReviewConfig

__all__ = ["loose_permissions"]


def _secrets(config: Config) -> list[tuple[str, Path | None]]:
    dkim = config.section(DkimConfig)
    return [
        ("outbound.users_file", config.outbound.users_file),
        ("outbound.login_locks_file", config.outbound.login_locks_file),
        ("inbound.deliver_password_file", config.inbound.deliver_password_file),
        ("outbound.deliver_password_file", config.outbound.deliver_password_file),
        ("tls.key_file", config.tls.key_file),
        ("review.password_file", config.section(ReviewConfig).password_file),
        ("dkim.private_key_file", dkim.private_key_file),
        ("dkim.ed25519_private_key_file", dkim.ed25519_private_key_file),
    ]


def _folders(config: Config) -> list[tuple[str, Path | None]]:
    """Where mail is kept: a Maildir's new/ and cur/ (the folder itself may hold a README
    anyone can read), and the audit log."""
    maildirs: list[tuple[str, Path | None]] = [("quarantine.path", config.quarantine.path)]
    for side in ("inbound", "outbound"):
        hop = config.listener(side).deliver_to
        if hop.kind == "maildir":
            maildirs.append((f"{side}.deliver_to", hop.path))
    out: list[tuple[str, Path | None]] = [("gateway.audit_log", config.gateway.audit_log)]
    for key, root in maildirs:
        if root is not None:
            out += [(key, root / "new"), (key, root / "cur")]
    return out


def loose_permissions(config: Config) -> list[str]:
    """One sentence for each secret or mail folder that others on the machine can read."""
    found = []
    for key, path in [*_secrets(config), *_folders(config)]:
        if path is None:
            continue
        try:
            mode = path.stat().st_mode
        except OSError:
            continue  # not made yet: the gateway makes it private
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            fix = "chmod 700" if stat.S_ISDIR(mode) else "chmod 600"
            found.append(f'{key}: "{path}" can be read by other users of this machine '
                         f"(mode {stat.S_IMODE(mode):o}); make it private with: {fix} {path}")
    return found
