"""Starting the project's own clamd: render the clamd.conf template, pick a signature database,
start Debian's clamd, wait until it answers PONG, stop it again.

Used by ``scripts/start-clamd`` (``python -m gateway_ops.clamd``), the test fixtures, the
benchmarks and the container's entrypoint (which only renders), so that all of them run clamd the
same way. The template is package data (``gateway_ops/data/clamd.conf``), read with
importlib.resources, so a pip install works as well as a checkout.

clamd listens where ``[clamav] address`` says: a loopback TCP port (and a unix socket in the run
directory beside it), or only the unix socket named. When freshclam's database exists
(``/var/lib/clamav/*.cvd`` or ``*.cld``) clamd uses it; otherwise the project's own test
signatures (``gateway/data/signatures``) are copied into the run directory and a loud warning
says that only test files will be detected.

A clamd already answering at the address is used as it is; so is Debian's clamav-daemon
(``/run/clamav/clamd.ctl``) when the config names it. ``--debian-config`` (used by
``scripts/run``) goes further: when nothing answers at the address but Debian's clamav-daemon
does, no second clamd is started and a copy of the config naming Debian's socket is written for
the gateway to run with.
"""

from __future__ import annotations

import argparse
import ipaddress
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
from importlib.resources.abc import Traversable
from pathlib import Path
from string import Template

from gateway.adapters.clamd import HEADER_ROOM, MIB, ClamdAddress
from gateway.config import Config

__all__ = [
    "DEBIAN_SOCKET",
    "ClamdSetup",
    "SYSTEM_DATABASE_DIR",
    "TEMPLATE",
    "TEST_SIGNATURES",
    "can_start_here",
    "clamd_binary",
    "debian_copy",
    "limits_for",
    "listening_addresses",
    "main",
    "ping",
    "prepare",
    "probe",
    "render_conf",
    "start",
    "stop",
    "system_database",
    "wait_until_answering",
]

log = logging.getLogger(__name__)

TEMPLATE: Traversable = files("gateway_ops").joinpath("data/clamd.conf")
TEST_SIGNATURES = Path(str(files("gateway").joinpath("data/signatures")))
SYSTEM_DATABASE_DIR = Path("/var/lib/clamav")
# Where Debian's clamav-daemon (clamav-daemon.socket) answers.
DEBIAN_SOCKET = Path("/run/clamav/clamd.ctl")

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


def can_start_here(address: ClamdAddress) -> bool:
    """Whether start-clamd can start a clamd at ``address``: a unix socket, or TCP on a loopback
    address. Never on an address other machines reach: clamd asks no password, and INSTREAM
    scans for anyone."""
    if address.kind == "unix":
        return True
    if address.host == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.host).is_loopback
    except ValueError:
        return False


def _listen_address(tcp_port: int | None, address: ClamdAddress | None) -> ClamdAddress:
    if address is not None:
        if address.kind == "unix":
            return ClamdAddress("unix", path=str(Path(address.path).absolute()))
        return address
    if tcp_port is None:
        raise TypeError("give the address clamd listens on, or tcp_port")
    return ClamdAddress("tcp", host="127.0.0.1", port=tcp_port)


def _listen_lines(run_dir: Path, address: ClamdAddress) -> str:
    if address.kind == "unix":
        return (f"LocalSocket {address.path}\n"
                "# No TCPSocket: [clamav] address names this socket only.")
    return (f"TCPAddr {address.host}\nTCPSocket {address.port}\n"
            f"LocalSocket {run_dir}/clamd.sock")


def render_conf(run_dir: Path, database_dir: Path, *, max_message_size: int,
                tcp_port: int | None = None, address: ClamdAddress | None = None,
                user: str | None = None, log_dir: Path | None = None,
                template: Traversable = TEMPLATE) -> str:
    """The clamd.conf text: ``template`` with paths, listening address, user and limits filled
    in. ``address`` is where clamd listens (``tcp_port`` is short for TCP on 127.0.0.1).

    Placeholders: ``run_dir``, ``database_dir``, ``log_dir`` (default: ``run_dir``), ``listen``
    (the Local/TCP socket lines for ``address``), ``tcp_port`` (its port; 3310 for a unix
    socket, for templates that listen on TCP as well, like the container's), ``stream_max``,
    ``scan_max``, ``max_message_size`` and ``user_line``."""
    address = _listen_address(tcp_port, address)
    stream_max, scan_max = limits_for(max_message_size)
    user_line = (f"User {user}" if user else
                 "# No User line: clamd runs as the user that starts it.")
    text = Template(template.read_text(encoding="utf-8")).substitute(
        run_dir=str(run_dir), database_dir=str(database_dir), log_dir=str(log_dir or run_dir),
        listen=_listen_lines(run_dir, address),
        tcp_port=str(address.port if address.kind == "tcp" else 3310),
        stream_max=stream_max, scan_max=scan_max, max_message_size=str(max_message_size),
        user_line=user_line,
    )
    return (f"# Written by start-clamd (gateway_ops.clamd) from {template} for "
            f"max_message_size {max_message_size}; edit that, not this.\n" + text)


def listening_addresses(conf_text: str) -> list[ClamdAddress]:
    """Where a clamd with this clamd.conf answers (its LocalSocket, and TCPSocket on TCPAddr)."""
    values: dict[str, str] = {}
    for line in conf_text.splitlines():
        words = line.split(None, 1)
        if len(words) == 2 and not words[0].startswith("#"):
            values[words[0]] = words[1].strip()
    out = []
    if "LocalSocket" in values:
        out.append(ClamdAddress("unix", path=values["LocalSocket"]))
    if values.get("TCPSocket", "").isdigit():
        out.append(ClamdAddress("tcp", host=values.get("TCPAddr", "127.0.0.1"),
                                port=int(values["TCPSocket"])))
    return out


@dataclass(frozen=True)
class ClamdSetup:
    run_dir: Path
    conf: Path
    address: ClamdAddress  # where clamd listens, as [clamav] address names it
    database_dir: Path
    test_signatures_only: bool
    user: str | None

    @property
    def tcp_port(self) -> int:
        """The TCP port, or 0 when clamd listens on a unix socket only."""
        return self.address.port if self.address.kind == "tcp" else 0

    @property
    def tcp_address(self) -> str:
        if self.address.kind != "tcp":
            raise ValueError(f"this clamd listens on {self.address} only")
        return str(self.address)

    @property
    def unix_address(self) -> str:
        if self.address.kind == "unix":
            return str(self.address)
        return f"unix:{self.run_dir / 'clamd.sock'}"

    @property
    def answers_on(self) -> tuple[str, ...]:
        if self.address.kind == "unix":
            return (str(self.address),)
        return (str(self.address), self.unix_address)

    @property
    def pid_file(self) -> Path:
        return self.run_dir / "clamd.pid"

    @property
    def log_file(self) -> Path:
        return self.run_dir / "clamd.log"


def _allowed(path: Path, user: pwd.struct_passwd, bits: tuple[int, int, int]) -> bool:
    """Whether ``user`` has the (owner, group, other) ``bits`` on ``path``."""
    groups = {user.pw_gid} | {g for g in os.getgrouplist(user.pw_name, user.pw_gid)}
    st = path.stat()
    if st.st_uid == user.pw_uid:
        return bool(st.st_mode & bits[0])
    if st.st_gid in groups:
        return bool(st.st_mode & bits[1])
    return bool(st.st_mode & bits[2])


def _can_traverse(path: Path, user: pwd.struct_passwd) -> bool:
    """Whether ``user`` can reach ``path`` (x permission on every directory above it)."""
    return all(_allowed(p, user, (stat.S_IXUSR, stat.S_IXGRP, stat.S_IXOTH))
               for p in [path, *path.parents])


def _can_write(path: Path, user: pwd.struct_passwd) -> bool:
    return _can_traverse(path, user) and _allowed(path, user,
                                                  (stat.S_IWUSR, stat.S_IWGRP, stat.S_IWOTH))


def prepare(run_dir: Path, *, max_message_size: int, tcp_port: int | None = None,
            address: ClamdAddress | None = None, user: str | None = None,
            test_signatures: bool = False) -> ClamdSetup:
    """Create the run directory (tmp, database copy, clamd.conf) ready for clamd to start.

    clamd listens at ``address`` (``tcp_port``: TCP on 127.0.0.1, with a unix socket in the run
    directory beside it). ``user`` is the account clamd switches to (only possible when started
    by root); the run directory, and a socket folder made here, are handed to it, because clamd
    writes its socket and temporary files after switching, and INSTREAM answers nothing when
    TemporaryDirectory is not writable.
    """
    address = _listen_address(tcp_port, address)
    if not can_start_here(address):
        raise ValueError(f"{address} is not on this machine's loopback; start-clamd starts clamd "
                         "only where no other machine can reach it")
    run_dir = run_dir.resolve()
    (run_dir / "tmp").mkdir(parents=True, exist_ok=True)
    socket_dir = Path(address.path).parent if address.kind == "unix" else None
    made_socket_dir = socket_dir is not None and not socket_dir.exists()
    if socket_dir is not None:
        socket_dir.mkdir(parents=True, exist_ok=True)
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
    conf.write_text(render_conf(run_dir, database_dir, address=address,
                                max_message_size=max_message_size, user=user), encoding="utf-8")
    if user:
        account = pwd.getpwnam(user)
        for p in [run_dir, *run_dir.rglob("*")]:
            os.chown(p, account.pw_uid, account.pw_gid)
        if socket_dir is not None and made_socket_dir:
            os.chown(socket_dir, account.pw_uid, account.pw_gid)
        if not _can_traverse(run_dir, account):
            raise PermissionError(
                f"clamd runs as the user {user!r}, which cannot reach {run_dir} (a directory "
                "above it is closed to other users); choose a run directory it can reach with "
                "--run-dir, e.g. /run/council-gateway/clamd")
        if socket_dir is not None and not _can_write(socket_dir, account):
            raise PermissionError(
                f"clamd runs as the user {user!r}, which cannot make its socket in "
                f"{socket_dir}; name a socket in a folder it can write to in [clamav] address")
    return ClamdSetup(run_dir, conf, address, database_dir, system_db is None, user)


def _target(address: ClamdAddress | tuple[str, int] | str) -> tuple[str, int] | str:
    if isinstance(address, ClamdAddress):
        return address.path if address.kind == "unix" else (address.host, address.port)
    return address


def probe(address: ClamdAddress | tuple[str, int] | str, timeout: float = 1.0) -> str:
    """``"pong"`` when clamd answers PING at ``address``; ``"silent"`` when something takes the
    connection but does not answer in time (a clamd still loading its signatures, or one that
    systemd starts on the first connection); ``"other"`` when what answers is not clamd;
    ``"none"`` when nothing listens there."""
    target = _target(address)
    try:
        if isinstance(target, str):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            try:
                sock.connect(target)
            except OSError:
                sock.close()
                raise
        else:
            sock = socket.create_connection(target, timeout=timeout)
    except OSError:
        return "none"
    with sock:
        try:
            sock.sendall(b"zPING\0")
            reply = sock.recv(16)
        except TimeoutError:
            return "silent"
        except OSError:
            return "other"
    return "pong" if reply.rstrip(b"\0\n") == b"PONG" else "other"


def ping(address: ClamdAddress | tuple[str, int] | str, timeout: float = 1.0) -> bool:
    """True when clamd answers PONG at (host, port), a unix socket path, or an address."""
    return probe(address, timeout) == "pong"


def wait_until_answering(address: ClamdAddress | int, deadline: float,
                         proc: subprocess.Popen[bytes] | None = None,
                         log_file: Path | None = None) -> None:
    """Poll PING until PONG or ``deadline`` (time.monotonic()); fail early if clamd exits.
    ``address`` may be a TCP port on 127.0.0.1."""
    if isinstance(address, int):
        address = ClamdAddress("tcp", host="127.0.0.1", port=address)
    while time.monotonic() < deadline:
        if ping(address, timeout=0.5):
            return
        if proc is not None and proc.poll() is not None and proc.returncode != 0:
            break
        time.sleep(0.05)  # polling a daemon we do not control; the deadline bounds it
    tail = ""
    if log_file is not None and log_file.exists():
        tail = "\n".join(log_file.read_text(errors="replace").splitlines()[-15:])
    raise RuntimeError(f"clamd did not answer on {address} in time\n{tail}")


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
        wait_until_answering(setup.address, deadline, proc if foreground else None,
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


def debian_copy(config_text: str, socket_path: Path, stream_max_length: int) -> str:
    """The gateway config ``config_text`` pointed at Debian's clamav-daemon: ``[clamav]
    address`` its socket and ``stream_max_length`` its StreamMaxLength, every other line as it
    was (so problems are reported at the same line numbers)."""
    from gateway.commands.init import set_value, size_value, toml_string

    text = set_value(config_text, "clamav", "address", toml_string(f"unix:{socket_path}"),
                     note="set by scripts/run: Debian's clamav-daemon")
    text = set_value(text, "clamav", "stream_max_length", size_value(stream_max_length),
                     note="Debian's clamd.conf StreamMaxLength")
    return (text.rstrip("\n") + "\n\n# Written by scripts/run: a copy of the config with "
            "[clamav] pointing at Debian's\n# clamav-daemon. Edit the original, not this, and "
            "start scripts/run again.\n")


# --------------------------------------------------------------------------- command line

def _default_user() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("clamav")
    except KeyError:
        return None
    return "clamav"


def _load(config_path: str | None) -> Config:
    from gateway.assembly import load_config
    from gateway.config import ConfigError

    try:
        return load_config(config_path)
    except ConfigError as err:
        lines = "\n".join(f"  - {p}" for p in err.problems)
        raise SystemExit(f"start-clamd: the gateway config {err.source} has problems:\n"
                         f"{lines}") from None


def _config_text(config: Config) -> str:
    if config.source == "<embedded>":
        return files("gateway").joinpath("data/gateway.toml").read_text(encoding="utf-8")
    return Path(config.source).read_text(encoding="utf-8")


def _addresses(config: Config) -> list[ClamdAddress]:
    from gateway.filters.antivirus import ClamavConfig

    return list(config.section(ClamavConfig).addresses)


def _answering(address: ClamdAddress, wait: float) -> bool:
    """True once something at ``address`` answers PONG; waits for one that takes connections
    but is still loading (up to ``wait`` seconds). RuntimeError when it never answers."""
    state = probe(address)
    if state == "other":
        raise RuntimeError(f"something that is not clamd answers on {address}")
    if state == "silent":
        print(f"start-clamd: something takes connections on {address} but does not answer PING "
              f"yet (a clamd loading its signatures?); waiting up to {wait:.0f} s",
              file=sys.stderr)
        try:
            wait_until_answering(address, time.monotonic() + wait)
        except RuntimeError:
            raise RuntimeError(f"{address} takes connections but does not answer PING: it is "
                               "not a clamd, or it is stuck") from None
        return True
    return state == "pong"


def _render_only(args: argparse.Namespace, config: Config,
                 addresses: list[ClamdAddress]) -> int:
    own = next((a for a in addresses if can_start_here(a)),
               ClamdAddress("tcp", host="127.0.0.1", port=3310))
    template: Traversable = Path(args.template) if args.template else TEMPLATE
    run_dir = Path(args.run_dir).absolute()
    database_dir = Path(args.database_dir) if args.database_dir else (
        system_database() or SYSTEM_DATABASE_DIR)
    text = render_conf(run_dir, database_dir, address=own,
                       max_message_size=config.gateway.max_message_size,
                       user=None if args.user in ("auto", "none") else args.user,
                       log_dir=Path(args.log_dir) if args.log_dir else None, template=template)
    out = Path(args.render_only)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    listening = listening_addresses(text)
    stream_max, _ = limits_for(config.gateway.max_message_size)
    print(f"start-clamd: wrote {out} (StreamMaxLength {stream_max} for max_message_size "
          f"{config.gateway.max_message_size}; answers on "
          f"{', '.join(map(str, listening)) or 'nothing'})", file=sys.stderr)
    if not any(a in listening for a in addresses):
        print(f"start-clamd: WARNING: [clamav] address names {', '.join(map(str, addresses))}, "
              "where this clamd does not listen: the gateway will not reach it",
              file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="start-clamd",
        description="Start the gateway's own clamd where [clamav] address says (a loopback TCP "
                    "port, or a unix socket) and wait until it answers. Does nothing when a "
                    "clamd already answers there.",
    )
    p.add_argument("--config", "-c", default=None,
                   help="the gateway config ([clamav] address, [gateway] max_message_size); "
                        "default config/gateway.toml or the embedded default")
    p.add_argument("--run-dir", default="run/clamd",
                   help="where clamd.conf, its socket, pid file, log and temporary files go "
                        "(default: run/clamd)")
    p.add_argument("--port", type=int, default=None,
                   help="listen on this TCP port on 127.0.0.1 instead of [clamav] address")
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
    p.add_argument("--debian-config", metavar="PATH", default=None,
                   help="when nothing answers at [clamav] address but Debian's clamav-daemon "
                        "does, start no clamd and write to PATH a copy of the config that uses "
                        "Debian's (scripts/run runs the gateway with it)")
    p.add_argument("--debian-socket", metavar="PATH", type=Path, default=DEBIAN_SOCKET,
                   help=f"where Debian's clamav-daemon answers (default: {DEBIAN_SOCKET})")
    p.add_argument("--debian-clamd-conf", metavar="PATH", type=Path,
                   default=Path("/etc/clamav/clamd.conf"),
                   help="Debian's clamd.conf, for its StreamMaxLength (default: "
                        "/etc/clamav/clamd.conf)")
    p.add_argument("--render-only", metavar="OUT", default=None,
                   help="write the clamd.conf to OUT and start nothing (the container's "
                        "entrypoint does this)")
    p.add_argument("--template", metavar="FILE", default=None,
                   help="with --render-only: the clamd.conf template (default: the shipped one)")
    p.add_argument("--database-dir", metavar="DIR", default=None,
                   help="with --render-only: the signature folder (default: /var/lib/clamav)")
    p.add_argument("--log-dir", metavar="DIR", default=None,
                   help="with --render-only: where clamd's log goes (default: the run directory)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    run_dir = Path(args.run_dir)
    if args.stop:
        print("start-clamd: stopped" if stop(run_dir) else "start-clamd: clamd was not running")
        return 0
    config = _load(args.config)
    addresses = ([ClamdAddress("tcp", host="127.0.0.1", port=args.port)] if args.port
                 else _addresses(config))
    if args.render_only:
        return _render_only(args, config, addresses)
    debian = ClamdAddress("unix", path=str(args.debian_socket))
    if args.debian_config:
        Path(args.debian_config).unlink(missing_ok=True)

    try:
        for address in addresses:
            if _answering(address, args.wait):
                who = "Debian's clamav-daemon" if address == debian else "clamd"
                print(f"start-clamd: {who} already answers on {address}; using it (no second "
                      "clamd started)")
                return 0
        # Only scripts/run waits for a Debian clamd still loading; a plain start just notes it.
        debian_answers = (_answering(debian, args.wait) if args.debian_config
                          else probe(debian) == "pong")
    except RuntimeError as e:
        print(f"start-clamd: {e}", file=sys.stderr)
        return 1
    where = ", ".join(map(str, addresses))
    if debian_answers and args.debian_config:
        from gateway.commands.init import clamd_stream_max_length

        out = Path(args.debian_config)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(debian_copy(_config_text(config), args.debian_socket,
                                   clamd_stream_max_length(args.debian_clamd_conf)),
                       encoding="utf-8")
        print(f"start-clamd: Debian's clamav-daemon answers on {debian}: using it, not starting "
              f"a second clamd beside it. [clamav] address in {config.source} names {where}, "
              f"so the gateway runs with {out}, a copy naming Debian's socket. To make it "
              f'permanent, set  address = "{debian}"  in [clamav].')
        return 0
    if debian_answers:
        print(f"start-clamd: note: Debian's clamav-daemon answers on {debian}. To use it "
              f'instead of a second clamd (each takes about 1 GB of memory), set  address = '
              f'"{debian}"  in [clamav].', file=sys.stderr)
    own = next((a for a in addresses if can_start_here(a)), None)
    if own is None:
        print(f"start-clamd: [clamav] address names {where}: not this machine's loopback. "
              "start-clamd starts clamd only where no other machine can reach it; start clamd "
              "on that machine, or name a loopback address or a unix socket.", file=sys.stderr)
        return 1
    user = {"auto": _default_user(), "none": None}.get(args.user, args.user)
    max_size = config.gateway.max_message_size
    try:
        setup = prepare(run_dir, address=own, user=user, max_message_size=max_size,
                        test_signatures=args.test_signatures)
    except PermissionError as e:
        if args.user != "auto" or user is None:
            print(f"start-clamd: {e}", file=sys.stderr)
            return 1
        # A checkout under a private home folder: clamd stays root rather than not running.
        print(f"start-clamd: {e}. Running clamd as root instead.", file=sys.stderr)
        setup = prepare(run_dir, address=own, user=None, max_message_size=max_size,
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
    print(f"start-clamd: clamd answers on {' and '.join(setup.answers_on)} "
          f"(running as {who}; database {setup.database_dir})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
