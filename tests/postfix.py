"""A throw-away Postfix instance on loopback, for end-to-end tests.

It plays the council's mailbox server: it listens on 127.0.0.1:PORT only, takes mail for the
council domain into Maildir folders (one per known mailbox, refusing unknown recipients at RCPT
with its own 550 5.1.1), and sends everything else to ``relayhost``, the gateway's outbound side.
Its configuration, queue, data and log all live in one directory of its own; it logs to a file
because a test machine has no syslog.

Other shapes come from the same instance: ``domain`` makes it the mailbox server of another
domain (a smarthost at the far end, say for ``example.org``), and ``settings`` sets or overrides
main.cf parameters (``message_size_limit``, ``debug_peer_list``, ...).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from email import message_from_bytes
from email.policy import default
from pathlib import Path
from typing import TypeVar

__all__ = ["PostfixError", "PostfixInstance", "free_port", "poll"]

T = TypeVar("T")

DOMAIN = "stanion-pc.gov.uk"

# Only the services this instance uses; nothing is chrooted (the queue is not a full chroot).
_MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

_MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
meta_directory = /etc/postfix
maillog_file_prefixes = {root}
maillog_file = {root}/maillog
syslog_name = postfix-e2e
myhostname = mail.{domain}
mydestination =
alias_maps =
alias_database =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_banner = $myhostname ESMTP
smtpd_peername_lookup = no
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtp_dns_support_level = disabled
relayhost = [127.0.0.1]:{relay_port}
virtual_mailbox_domains = {domain}
virtual_mailbox_base = {root}/mail
virtual_mailbox_maps = texthash:{root}/conf/mailboxes
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
"""


class PostfixError(RuntimeError):
    """Postfix would not start or stop; the message carries its log."""


def free_port() -> int:
    """A port that is free on 127.0.0.1 right now (for a listener whose port Postfix must know
    before the listener exists)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def poll(found: Callable[[], T | None], deadline: float, explain: Callable[[], str]) -> T:
    """Call ``found`` until it returns something truthy; AssertionError with ``explain()`` once
    ``deadline`` seconds have passed."""
    end = time.monotonic() + deadline
    while not (result := found()):
        if time.monotonic() > end:
            raise AssertionError(explain())
        time.sleep(0.05)  # the polling interval of a deadline-bound wait
    return result


def _main_cf(template: str, settings: Mapping[str, str]) -> str:
    """main.cf with ``settings`` in place of the template's lines for the same parameters (a
    parameter given twice makes Postfix warn), the others appended."""
    lines = [line for line in template.splitlines()
             if line.partition("=")[0].strip() not in settings]
    lines += [f"{name} = {value}" for name, value in settings.items()]
    return "\n".join(lines) + "\n"


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except (OSError, IndexError):
        return False
    return state != "Z"


class PostfixInstance:
    """One Postfix with its own config directory: ``start()``, ``stop()``, ``sendmail()``."""

    def __init__(self, mailboxes: list[str], relay_port: int, *, domain: str = DOMAIN,
                 settings: Mapping[str, str] | None = None) -> None:
        # The Postfix daemons drop to unprivileged users and open absolute paths under this
        # directory, so every directory above it must be searchable by them; pytest's base
        # temporary directory is private to root, hence a directory of our own in /tmp.
        self.root = Path(tempfile.mkdtemp(prefix="council-postfix-"))
        self.root.chmod(0o755)
        self.port = free_port()
        self.relay_port = relay_port
        self.mailboxes = mailboxes
        self.domain = domain
        self.settings = dict(settings or {})
        self._write_config()

    @property
    def conf(self) -> Path:
        return self.root / "conf"

    def _write_config(self) -> None:
        nobody = pwd.getpwnam("nobody")
        for d in ("conf", "queue", "data", "mail"):
            (self.root / d).mkdir()
        shutil.chown(self.root / "data", user="postfix")
        os.chown(self.root / "mail", nobody.pw_uid, nobody.pw_gid)
        (self.conf / "main.cf").write_text(_main_cf(_MAIN_CF.format(
            root=self.root, domain=self.domain, relay_port=self.relay_port,
            uid=nobody.pw_uid, gid=nobody.pw_gid), self.settings))
        (self.conf / "master.cf").write_text(_MASTER_CF.format(port=self.port))
        (self.conf / "mailboxes").write_text(
            "".join(f"{name}@{self.domain} {name}/\n" for name in self.mailboxes))

    def log(self) -> str:
        try:
            return (self.root / "maillog").read_text(errors="replace")
        except OSError:
            return "(Postfix wrote no log)"

    def _postfix(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["postfix", "-c", str(self.conf), *args], capture_output=True,
                              text=True, timeout=60, check=False)

    def is_listening(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                return s.recv(4).startswith(b"220")
        except OSError:
            return False

    def master_pid(self) -> int | None:
        try:
            return int((self.root / "queue" / "pid" / "master.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def start(self, deadline: float = 20.0) -> None:
        """Start Postfix and wait until it greets on its port; fail with its log if it does not."""
        done = self._postfix("start")
        if done.returncode != 0:
            raise PostfixError(f"postfix start failed ({done.returncode}): {done.stderr}\n"
                               f"--- maillog ---\n{self.log()}")
        try:
            poll(self.is_listening, deadline, lambda: "")
        except AssertionError:
            raise PostfixError(f"Postfix did not greet on 127.0.0.1:{self.port} within "
                               f"{deadline:.0f}s\n--- maillog ---\n{self.log()}") from None

    def stop(self, deadline: float = 10.0) -> None:
        """Stop Postfix and wait until its master process is gone (killed if it lingers)."""
        pid = self.master_pid()
        self._postfix("stop")
        if pid is not None:
            try:
                poll(lambda: not _alive(pid), deadline, lambda: "")
            except AssertionError:
                os.kill(pid, signal.SIGKILL)
        poll(lambda: not self.is_listening(), deadline,
             lambda: f"Postfix still listens after stop\n--- maillog ---\n{self.log()}")

    def running(self) -> bool:
        pid = self.master_pid()
        return pid is not None and _alive(pid) and self.is_listening()

    def maildir(self, mailbox: str) -> Path:
        return self.root / "mail" / mailbox

    def messages(self, mailbox: str) -> list[bytes]:
        new = self.maildir(mailbox) / "new"
        if not new.is_dir():
            return []
        return [p.read_bytes() for p in sorted(new.iterdir())]

    def wait_for_subject(self, mailbox: str, subject: str, deadline: float = 20.0) -> bytes:
        """Poll ``mailbox`` until a message with ``subject`` is there; fail with the log if not.
        Fails too if that subject was delivered more than once."""
        return self.wait_for(mailbox, lambda m: message_from_bytes(m, policy=default)["subject"]
                             == subject, f"message '{subject}'", deadline)

    def wait_for(self, mailbox: str, matches: Callable[[bytes], bool], what: str,
                 deadline: float = 20.0) -> bytes:
        """Poll ``mailbox`` until a message ``matches``; fail with the log if none does in time,
        or if more than one does."""
        def found() -> list[bytes]:
            return [m for m in self.messages(mailbox) if matches(m)]
        hits = poll(found, deadline, lambda: f"no {what} in {mailbox} after "
                                             f"{deadline:.0f}s\n--- maillog ---\n{self.log()}")
        assert len(hits) == 1, f"{what} was delivered {len(hits)} times"
        return hits[0]

    def sendmail(self, mail_from: str, rcpt_tos: list[str], data: bytes,
                 options: Sequence[str] = ()) -> None:
        """Submit a message through Postfix's own sendmail command (the pickup route);
        ``options`` are more sendmail flags, e.g. ``("-N", "success,failure", "-V", "id")``."""
        done = subprocess.run(["sendmail", "-C", str(self.conf), "-f", mail_from, *options,
                               "--", *rcpt_tos],
                              input=data, capture_output=True, timeout=30, check=False)
        if done.returncode != 0:
            raise PostfixError(f"sendmail failed ({done.returncode}): {done.stderr!r}\n"
                               f"--- maillog ---\n{self.log()}")

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
