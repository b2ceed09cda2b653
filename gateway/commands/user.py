"""``council-gateway user add|remove|list``: councillors' logins for the submission side."""

from __future__ import annotations

import argparse
import getpass
import json
import sys

from gateway.commands.common import add_config_option, load_or_report
from gateway.people.users import UsersFile


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("user", help="manage councillors' logins",
                              description="Manage the logins councillors use to send mail.")
    sub = p.add_subparsers(dest="user_command", metavar="ACTION", required=True)
    add = sub.add_parser("add", help="add a login, or change its password",
                         description="Add a login or change its password. The password is "
                                     "asked for twice, or read from standard input.")
    add.add_argument("name")
    add.add_argument("--password-stdin", action="store_true",
                     help="read the password from standard input (one line)")
    add_config_option(add)
    add.set_defaults(func=cmd_add)
    rm = sub.add_parser("remove", help="remove a login", description="Remove a login.")
    rm.add_argument("name")
    add_config_option(rm)
    rm.set_defaults(func=cmd_remove)
    ls = sub.add_parser("list", help="list the logins", description="List the logins.")
    ls.add_argument("--json", action="store_true", help="print JSON")
    add_config_option(ls)
    ls.set_defaults(func=cmd_list)


def _users(args: argparse.Namespace) -> UsersFile | None:
    config = load_or_report(args)
    if config is None:
        return None
    if config.outbound.users_file is None:
        print("outbound.users_file is not set in the config", file=sys.stderr)
        return None
    return UsersFile(config.outbound.users_file)


def cmd_add(args: argparse.Namespace) -> int:
    users = _users(args)
    if users is None:
        return 2
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"Password for {args.name}: ")
        if getpass.getpass("Again: ") != password:
            print("The two passwords differ; nothing changed.", file=sys.stderr)
            return 1
    try:
        users.add(args.name, password)
    except ValueError as e:
        print(f"Not added: {e}", file=sys.stderr)
        return 1
    print(f"Login {args.name} saved in {users.path}")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    users = _users(args)
    if users is None:
        return 2
    if not users.remove(args.name):
        print(f"There is no login called {args.name}", file=sys.stderr)
        return 1
    print(f"Login {args.name} removed")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    users = _users(args)
    if users is None:
        return 2
    names = users.names()
    if args.json:
        print(json.dumps(names))
    else:
        print("\n".join(names) if names else "(no logins yet)")
    return 0
