"""``council-gateway review``: the clerk's quarantine page, and setting its password."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import signal
import sys

from gateway.assembly import assemble
from gateway.commands.common import add_config_option, with_config
from gateway.config import Config
from gateway.review.auth import MIN_PASSWORD_LENGTH, hash_password, write_password_hash
from gateway.review.settings import ReviewConfig, review_warnings

__all__ = ["add_parser"]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "review",
        help="serve the clerk's web page for held mail, or set its password",
        description="Serve the clerk's page for reviewing held mail (by default on "
                    "http://127.0.0.1:8025/). 'run' serves it too when [review] enabled = true.",
    )
    add_config_option(p)
    p.set_defaults(func=cmd_serve)
    sub = p.add_subparsers(dest="review_action", metavar="ACTION")
    sp = sub.add_parser(
        "set-password",
        help="set the password the clerk logs in with",
        description="Set the clerk's password. Only an argon2 hash of it is kept, in the file "
                    "named by [review] password_file (default config/review-password). "
                    "Everyone logged in to the page is logged out.")
    sp.add_argument("--config", "-c", metavar="PATH", default=argparse.SUPPRESS,
                    help="the config file")
    sp.add_argument("--stdin", action="store_true",
                    help="read the password from the first line of standard input instead of "
                         "asking for it")
    sp.set_defaults(func=cmd_set_password)


@with_config
def cmd_serve(args: argparse.Namespace, config: Config) -> int:
    cfg = config.section(ReviewConfig)
    if not cfg.password_file.exists():
        print(f"Note: no password is set yet; run 'council-gateway review set-password' "
              f"(it is kept in {cfg.password_file}).", file=sys.stderr)
    for warning in review_warnings(cfg):
        print(f"Note: {warning}", file=sys.stderr)
    return asyncio.run(_serve(config))


async def _serve(config: Config) -> int:
    from gateway.review.app import create_app
    from gateway.review.serve import EmbeddedServer, uvicorn_config

    server = EmbeddedServer(uvicorn_config(create_app(assemble(config)), config))

    def stop() -> None:
        server.should_exit = True

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    try:
        await server.serve()
    except SystemExit as e:  # uvicorn exits when it cannot listen
        return int(e.code or 1)
    return 0 if server.started else 1


@with_config
def cmd_set_password(args: argparse.Namespace, config: Config) -> int:
    cfg = config.section(ReviewConfig)
    if args.stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("New password for the review page: ")
        again = getpass.getpass("The same password again: ")
        if password != again:
            print("The two passwords differ; nothing was changed.", file=sys.stderr)
            return 1
    if len(password) < MIN_PASSWORD_LENGTH:
        print(f"The password must be at least {MIN_PASSWORD_LENGTH} characters long; nothing "
              "was changed.", file=sys.stderr)
        return 1
    try:
        write_password_hash(cfg.password_file, hash_password(password))
    except OSError as e:
        print(f"Could not write {cfg.password_file}: {e.strerror or e}", file=sys.stderr)
        return 1
    print(f"Password set (its hash is in {cfg.password_file}). Anyone logged in with the old "
          "password is logged out at their next click, and logs in again with the new one.")
    return 0
