"""``council-gateway user add|remove|list|unlock``: councillors' logins for the submission side,
the addresses each may send as, and ending a login lockout."""

from __future__ import annotations

import argparse
import getpass
import json
import sys

from gateway.commands.common import add_config_option, with_config
from gateway.config import Config
from gateway.people.users import UsersFile, default_address
from gateway.smtp.logins import unlock


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("user", help="manage councillors' logins",
                              description="Manage the logins councillors use to send mail.")
    sub = p.add_subparsers(dest="user_command", metavar="ACTION", required=True)
    add = sub.add_parser(
        "add", help="add a login, or change its password or addresses",
        description="Add a login, or change its password or the addresses it may send as. The "
                    "password is asked for twice, or read from standard input. A login sends "
                    "only as its own address, and as those given with --may-send-as.")
    add.add_argument("name")
    add.add_argument("--address", metavar="ADDRESS",
                     help="the login's own address (default: the name when it is an address, "
                          "else NAME@ the council's first domain)")
    add.add_argument("--may-send-as", metavar="ADDRESS", action="append", default=[],
                     help="another address this login may send as (repeat for more), e.g. a "
                          "shared clerk@ address")
    add.add_argument("--password-stdin", action="store_true",
                     help="read the password from standard input (one line)")
    add.add_argument("--keep-password", action="store_true",
                     help="only change the addresses of an existing login")
    add_config_option(add)
    add.set_defaults(func=cmd_add)
    rm = sub.add_parser("remove", help="remove a login", description="Remove a login.")
    rm.add_argument("name")
    add_config_option(rm)
    rm.set_defaults(func=cmd_remove)
    ls = sub.add_parser("list", help="list the logins and the addresses they send as",
                        description="List the logins and the addresses each may send as.")
    ls.add_argument("--json", action="store_true", help="print JSON")
    add_config_option(ls)
    ls.set_defaults(func=cmd_list)
    un = sub.add_parser(
        "unlock", help="end a lockout after failed logins",
        description="End the lockout of a login (after too many failed passwords) or of a "
                    "network (give its address). The running gateway sees it at once.")
    un.add_argument("name", help="a login name, or an IP address or network")
    add_config_option(un)
    un.set_defaults(func=cmd_unlock)


def _users(config: Config) -> UsersFile | None:
    if config.outbound.users_file is None:
        print("outbound.users_file is not set in the config", file=sys.stderr)
        return None
    return UsersFile(config.outbound.users_file)


@with_config
def cmd_add(args: argparse.Namespace, config: Config) -> int:
    users = _users(config)
    if users is None:
        return 2
    password: str | None = None
    if not args.keep_password:
        if args.password_stdin:
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = getpass.getpass(f"Password for {args.name}: ")
            if getpass.getpass("Again: ") != password:
                print("The two passwords differ; nothing changed.", file=sys.stderr)
                return 1
    addresses: tuple[str, ...] | None = None
    if args.address or args.may_send_as:
        own = args.address or (users.addresses(args.name)[:1] or (
            default_address(args.name, config.gateway.council_domains),))[0]
        addresses = tuple(dict.fromkeys([own, *args.may_send_as]))
    for a in addresses or ():
        if not config.gateway.is_council_address(a):
            print(f"Not saved: {a} is not an address of the council "
                  f"({', '.join(config.gateway.council_domains)})", file=sys.stderr)
            return 1
    try:
        users.add(args.name, password, addresses)
    except ValueError as e:
        print(f"Not saved: {e}", file=sys.stderr)
        return 1
    sends_as = users.addresses(args.name) or (
        default_address(args.name, config.gateway.council_domains),)
    print(f"Login {args.name} saved in {users.path}; it sends as {', '.join(sends_as)}")
    return 0


@with_config
def cmd_remove(args: argparse.Namespace, config: Config) -> int:
    users = _users(config)
    if users is None:
        return 2
    if not users.remove(args.name):
        print(f"There is no login called {args.name}", file=sys.stderr)
        return 1
    print(f"Login {args.name} removed")
    return 0


@with_config
def cmd_list(args: argparse.Namespace, config: Config) -> int:
    users = _users(config)
    if users is None:
        return 2
    rows = [{"name": n, "sends_as": list(users.addresses(n) or (
        default_address(n, config.gateway.council_domains),))} for n in users.names()]
    if args.json:
        print(json.dumps(rows))
    elif not rows:
        print("(no logins yet)")
    else:
        for row in rows:
            print(f"{row['name']}  sends as {', '.join(row['sends_as'])}")
    return 0


@with_config
def cmd_unlock(args: argparse.Namespace, config: Config) -> int:
    path = config.outbound.login_locks_file
    if path is None or not unlock(path, args.name):
        print(f"{args.name} is not locked.", file=sys.stderr)
        return 1
    print(f"Unlocked {args.name}: logging in works again.")
    return 0
