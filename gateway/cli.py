"""The ``council-gateway`` console script.

Each sub-command lives in its own module under ``gateway.commands`` and exposes
``add_parser(subparsers)``, which adds the command and sets ``func(args) -> int``; they are
listed in :data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import logging
import os
import select
import sys

from gateway import __version__
from gateway.commands import (
    check_config,
    dkim_keygen,
    doctor,
    footer,
    init,
    pipeline,
    quarantine,
    review,
    run,
    scan,
    senders,
    user,
)
from gateway.logctx import ConnIdFilter

__all__ = ["COMMANDS", "build_parser", "main", "setup_logging"]

SERVICES = frozenset({"run", "review"})  # long-running: they log what they do
COMMANDS = (check_config, dkim_keygen, doctor, footer, init, pipeline, quarantine, review, run,
            scan, senders, user)

EXIT_OK = 0
EXIT_PROBLEM = 1
EXIT_CONFIG = 2


# syslog priorities, which journald reads from a "<N>" at the start of a line.
_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3,
             logging.CRITICAL: 2}


class _JournalFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"<{_PRIORITY.get(record.levelno, 6)}>{super().format(record)}"


def _stderr_is_journal() -> bool:
    """Whether stderr is systemd's journal: JOURNAL_STREAM names its device and inode (checked,
    so that a service whose stderr was redirected to a file still gets timestamps)."""
    stream = os.environ.get("JOURNAL_STREAM", "")
    try:
        st = os.fstat(sys.stderr.fileno())
    except (AttributeError, OSError, ValueError):
        return False
    return bool(stream) and stream == f"{st.st_dev}:{st.st_ino}"


def setup_logging(verbose: bool = False, level: int = logging.INFO) -> None:
    """Greppable lines on stderr: time, level, logger, then key=value words. Under systemd,
    when stderr is the journal, without the time (the journal adds its own) and with the
    level as a priority the journal records (journalctl -p warning)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ConnIdFilter())
    if _stderr_is_journal():
        handler.setFormatter(_JournalFormatter(
            "%(levelname)s %(name)s conn=%(conn)s: %(message)s"))
    else:
        handler.setFormatter(logging.Formatter(
            "%(asctime)s %(levelname)s %(name)s conn=%(conn)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if verbose else level, handlers=[handler],
                        force=True)
    # aiosmtpd logs every command at INFO; our own summary lines say what matters.
    logging.getLogger("mail.log").setLevel(logging.WARNING if not verbose else logging.DEBUG)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="council-gateway",
        description="A mail gateway that enforces the council's mail policy.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debugging detail")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def _stdout_gone() -> bool:
    """Whether standard output is a pipe nobody reads any more."""
    try:
        poll = select.poll()
        poll.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poll.poll(0))
    except (OSError, ValueError):
        return False


def main(argv: list[str] | None = None) -> int:
    # Everything the gateway writes (mail, the audit log, keys, state) is its own to read.
    os.umask(0o077)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_PROBLEM
    # A service's log is its record; a one-shot command's answer is what it prints, so its
    # log says only what went wrong (-v shows the rest).
    setup_logging(args.verbose, logging.INFO if args.command in SERVICES else logging.WARNING)
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # here, so a closed pipe is noticed below and not at exit
        return code
    except BrokenPipeError:
        if not _stdout_gone():
            raise  # another pipe broke (a peer's socket): that is a fault, not the reader
        # The reader went away (``quarantine list | head``): nothing more to say to it.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_PROBLEM
