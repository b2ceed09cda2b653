"""Starting the project's own clamd: render ``config/clamd.conf``, pick a signature database,
start Debian's clamd, wait until it answers PONG, stop it again.

Used by ``scripts/start-clamd`` (``python -m gateway_ops.clamd``), the test fixtures and the
benchmarks, so that all three run clamd the same way.

When freshclam's database exists (``/var/lib/clamav/*.cvd`` or ``*.cld``) clamd uses it; otherwise
the project's own test signatures (``gateway/data/signatures``) are copied into the run directory
and a loud warning says that only test files will be detected.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from string import Template

from gateway.adapters.clamd import HEADER_ROOM, MIB

__all__ = [
    "ClamdSetup",
    "SYSTEM_DATABASE_DIR",
    "TEMPLATE",
    "TEST_SIGNATURES",
    "clamd_binary",
    "limits_for",
    "main",
    "ping",
    "prepare",
    "render_conf",
    "start",
    "stop",
    "system_database",
    "wait_until_answering",
]

log = logging.getLogger(__name__)

PROJECT = Path(__file__).resolve().parents[1]
TEMPLATE = PROJECT / "config" / "clamd.conf"
TEST_SIGNATURES = Path(str(files("gateway").joinpath("data/signatures")))
SYSTEM_DATABASE_DIR = Path("/var/lib/clamav")

TEST_ONLY_WARNING = (
    "ONLY TEST SIGNATURES ARE LOADED: clamd detects the EICAR test string and ClamAV's test "
    "files, NOT real viruses. Install freshclam's database (apt-get install clamav-freshclam) "
    "for real protection."
)


def clamd_binary() -> str:
    found = shutil.which("clamd") or ("/usr/sbin/clamd" if Path("/usr/sbin/clamd").exists()
                                      else None)
    if not found:
        raise FileNotFoundError("clamd is not installed; run scripts/setup (Debian package "
                                "clamav-daemon)")
    return found


def system_database(directory: Path = SYSTEM_DATABASE_DIR) -> Path | None:
    """freshclam's database directory when it holds a database, else None."""
    try:
        if any(directory.glob("*.cvd")) or any(directory.glob("*.cld")):
            return directory
    except OSError:
        pass
    return None


def limits_for(max_message_size: int) -> tuple[str, str]:
    """(StreamMaxLength, MaxScanSize) for clamd, in whole MiB, for a gateway size limit."""
    stream = math.ceil((max_message_size + HEADER_ROOM) / MIB)
    return f"{stream}M", f"{stream * 4}M"


def render_conf(run_dir: Path, database_dir: Path, *, tcp_port: int, max_message_size: int,
                user: str | None = None, template: Path = TEMPLATE) -> str:
    """The clamd.conf text: the template with paths, port, user and limits filled in."""
    stream_max, scan_max = limits_for(max_message_size)
    user_line = (f"User {user}" if user else
                 "# No User line: clamd runs as the user that starts it.")
    text = Template(template.read_text(encoding="utf-8")).substitute(
        run_dir=str(run_dir), database_dir=str(database_dir), tcp_port=str(tcp_port),
        stream_max=stream_max, scan_max=scan_max, max_message_size=str(max_message_size),
        user_line=user_line,
    )
    return f"# Written by scripts/start-clamd from {template}; edit that, not this.\n" + text


@dataclass(frozen=True)
class ClamdSetup:
    run_dir: Path
    conf: Path
    tcp_port: int
    database_dir: Path
    test_signatures_only: bool
    user: str | None

    @property
    def tcp_address(self) -> str:
        return f"tcp://127.0.0.1:{self.tcp_port}"

    @property
    def unix_address(self) -> str:
        return f"unix:{self.run_dir / 'clamd.sock'}"

    @property
    def pid_file(self) -> Path:
        return self.run_dir / "clamd.pid"

    @property
    def log_file(self) -> Path:
        return self.run_dir / "clamd.log"


def _can_traverse(path: Path, user: pwd.struct_passwd) -> bool:
    """Whether ``user`` can reach ``path`` (x permission on every directory above it)."""
    groups = {user.pw_gid} | {g for g in os.getgrouplist(user.pw_name, user.pw_gid)}
    for parent in [path, *path.parents]:
        st = parent.stat()
        if st.st_uid == user.pw_uid:
            ok = st.st_mode & stat.S_IXUSR
        elif st.st_gid in groups:
            ok = st.st_mode & stat.S_IXGRP
        else:
            ok = st.st_mode & stat.S_IXOTH
        if not ok:
            return False
    return True


def prepare(run_dir: Path, *, tcp_port: int, max_message_size: int, user: str | None = None,
            test_signatures: bool = False) -> ClamdSetup:
    """Create the run directory (tmp, database copy, clamd.conf) ready for clamd to start.

    ``user`` is the account clamd switches to (only possible when started by root); the run
    directory is handed to it, because clamd writes its socket and temporary files after
    switching, and INSTREAM answers nothing when TemporaryDirectory is not writable.
    """
    run_dir = run_dir.resolve()
    (run_dir / "tmp").mkdir(parents=True, exist_ok=True)
    system_db = None if test_signatures else system_database()
    if system_db is not None:
        database_dir = system_db
    else:
        database_dir = run_dir / "db"
        database_dir.mkdir(exist_ok=True)
        for old in database_dir.iterdir():
            old.unlink()
        for sig in sorted(TEST_SIGNATURES.iterdir()):
            if sig.suffix in (".ndb", ".hdb", ".ldb", ".hsb", ".ign2", ".fp"):
                shutil.copyfile(sig, database_dir / sig.name)
    conf = run_dir / "clamd.conf"
    conf.write_text(render_conf(run_dir, database_dir, tcp_port=tcp_port,
                                max_message_size=max_message_size, user=user), encoding="utf-8")
    if user:
        account = pwd.getpwnam(user)
        for p in [run_dir, *run_dir.rglob("*")]:
            os.chown(p, account.pw_uid, account.pw_gid)
        if not _can_traverse(run_dir, account):
            raise PermissionError(
                f"clamd runs as the user {user!r}, which cannot reach {run_dir} (a directory "
                "above it is closed to other users); choose a run directory it can reach with "
                "--run-dir, e.g. /run/council-gateway/clamd")
    return ClamdSetup(run_dir, conf, tcp_port, database_dir, system_db is None, user)


def ping(address: tuple[str, int] | str, timeout: float = 1.0) -> bool:
    """True when clamd answers PONG at (host, port) or at a unix socket path."""
    try:
        if isinstance(address, str):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(address)
        else:
            sock = socket.create_connection(address, timeout=timeout)
        with sock:
            sock.sendall(b"zPING\0")
            return sock.recv(16).rstrip(b"\0\n") == b"PONG"
    except OSError:
        return False


def wait_until_answering(port: int, deadline: float, proc: subprocess.Popen[bytes] | None = None,
                         log_file: Path | None = None) -> None:
    """Poll PING until PONG or ``deadline`` (time.monotonic()); fail early if clamd exits."""
    while time.monotonic() < deadline:
        if ping(("127.0.0.1", port), timeout=0.5):
            return
        if proc is not None and proc.poll() is not None and proc.returncode != 0:
            break
        time.sleep(0.05)  # polling a daemon we do not control; the deadline bounds it
    tail = ""
    if log_file is not None and log_file.exists():
        tail = "\n".join(log_file.read_text(errors="replace").splitlines()[-15:])
    raise RuntimeError(f"clamd did not answer on 127.0.0.1:{port} in time\n{tail}")


def start(setup: ClamdSetup, *, foreground: bool = False, wait: float = 120.0,
          stderr: int | None = None) -> subprocess.Popen[bytes]:
    """Start clamd with ``setup``; return once it answers PONG.

    In the foreground the returned process *is* clamd (the tests hold it to kill it); otherwise
    clamd detaches by itself and the returned process is the launcher, already finished.
    """
    if setup.test_signatures_only:
        log.warning("clamd: %s", TEST_ONLY_WARNING)
    cmd = [clamd_binary(), f"--config-file={setup.conf}"]
    if foreground:
        cmd.append("--foreground")
    with open(setup.run_dir / "clamd.out", "ab") as out:
        # A detached clamd must not hold the caller's stdout/stderr open.
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=out if stderr is None else stderr,
                                start_new_session=True)
    deadline = time.monotonic() + wait
    if not foreground:
        try:
            rc = proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            rc = None
        if rc not in (0, None):
            raise RuntimeError(f"clamd failed to start (exit status {rc}); see {setup.log_file}")
    try:
        wait_until_answering(setup.tcp_port, deadline, proc if foreground else None,
                             setup.log_file)
    except RuntimeError:
        if foreground:
            stop_process(proc)
        raise
    return proc


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)


def stop(run_dir: Path, timeout: float = 20.0) -> bool:
    """Stop the clamd whose pid file is in ``run_dir``; True if one was running."""
    pid_file = run_dir / "clamd.pid"
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)  # waiting for a process that is not our child; the deadline bounds it
    os.kill(pid, signal.SIGKILL)
    return True


# --------------------------------------------------------------------------- command line

def _default_user() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("clamav")
    except KeyError:
        return None
    return "clamav"


def _max_message_size(config_path: str | None) -> int:
    from gateway.assembly import load_config
    from gateway.config import ConfigError

    try:
        return load_config(config_path).gateway.max_message_size
    except ConfigError as err:
        raise SystemExit(f"start-clamd: the gateway config has problems:\n{err}") from None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="start-clamd",
        description="Start the gateway's own clamd (loopback only) and wait until it answers. "
                    "Does nothing when a clamd already answers on the port.",
    )
    p.add_argument("--config", "-c", default=None,
                   help="the gateway config (for max_message_size); default config/gateway.toml "
                        "or the embedded default")
    p.add_argument("--run-dir", default="run/clamd",
                   help="where clamd.conf, its socket, pid file, log and temporary files go "
                        "(default: run/clamd)")
    p.add_argument("--port", type=int, default=3310,
                   help="loopback TCP port clamd listens on (default: 3310)")
    p.add_argument("--user", default="auto",
                   help='account clamd runs as: "auto" (clamav when started by root, else the '
                        'current user), "none" (the current user), or a user name')
    p.add_argument("--test-signatures", action="store_true",
                   help="load only the project's test signatures even if freshclam's exist")
    p.add_argument("--foreground", action="store_true",
                   help="run clamd in the foreground (for a service manager or a container)")
    p.add_argument("--stop", action="store_true", help="stop the clamd of --run-dir")
    p.add_argument("--wait", type=float, default=300.0,
                   help="seconds to wait for PONG (loading freshclam's database takes a while)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    run_dir = Path(args.run_dir)
    if args.stop:
        print("start-clamd: stopped" if stop(run_dir) else "start-clamd: clamd was not running")
        return 0
    if ping(("127.0.0.1", args.port)):
        print(f"start-clamd: clamd already answers on 127.0.0.1:{args.port}")
        return 0
    user = {"auto": _default_user(), "none": None}.get(args.user, args.user)
    try:
        setup = prepare(run_dir, tcp_port=args.port, user=user,
                        max_message_size=_max_message_size(args.config),
                        test_signatures=args.test_signatures)
    except PermissionError as e:
        if args.user != "auto" or user is None:
            print(f"start-clamd: {e}", file=sys.stderr)
            return 1
        # A checkout under a private home folder: clamd stays root rather than not running.
        print(f"start-clamd: {e}. Running clamd as root instead.", file=sys.stderr)
        setup = prepare(run_dir, tcp_port=args.port, user=None,
                        max_message_size=_max_message_size(args.config),
                        test_signatures=args.test_signatures)
    except KeyError as e:
        print(f"start-clamd: {e}", file=sys.stderr)
        return 1
    if args.foreground:
        if setup.test_signatures_only:
            log.warning("clamd: %s", TEST_ONLY_WARNING)
        os.execv(clamd_binary(), [clamd_binary(), f"--config-file={setup.conf}", "--foreground"])
    try:
        start(setup, wait=args.wait)
    except (RuntimeError, FileNotFoundError) as e:
        print(f"start-clamd: {e}", file=sys.stderr)
        return 1
    who = setup.user or "the current user"
    print(f"start-clamd: clamd answers on {setup.tcp_address} and {setup.unix_address} "
          f"(running as {who}; database {setup.database_dir})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
