"""``council-gateway senders``: list, add, block and remove known senders."""

from __future__ import annotations

import argparse
import json
import sys

from gateway.commands.common import add_config_option, load_or_report, with_config
from gateway.config import Config
from gateway.people.senders import (
    Entry,
    add_entry,
    block_sender,
    parse_entry,
    read_entries,
    remove_everywhere,
    senders_config,
)
from gateway.rules.wording import show_hidden

__all__ = ["add_parser"]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "senders",
        help="list, add, block or remove known senders",
        description="Known senders' mail is not held as junk when it is shown to be genuine "
                    "(SPF/DKIM/DMARC). Addresses councillors write to are learned by themselves.",
    )
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    ap = sub.add_parser("list", help="list known, learned and blocked senders",
                        description="List every known, learned and blocked sender.")
    add_config_option(ap)
    ap.add_argument("--json", action="store_true", help="print JSON for programs")
    ap.set_defaults(func=cmd_list)
    for name, help_text, func in (
        ("add", "add an address or @domain to the known-senders file", cmd_add),
        ("block", "always hold mail from an address or @domain", cmd_block),
        ("remove", "remove an address or @domain from the known, learned and blocked lists",
         cmd_remove),
    ):
        ap = sub.add_parser(name, help=help_text, description=help_text)
        add_config_option(ap)
        ap.add_argument("address", metavar="ADDRESS",
                        help='an address like "jane@nalc.gov.uk" or a domain like "@nalc.gov.uk"')
        ap.set_defaults(func=func)


@with_config
def cmd_list(args: argparse.Namespace, config: Config) -> int:
    cfg = senders_config(config)
    groups = [
        ("config", f"in {config.source} ([senders] known)", [parse_entry(k) for k in cfg.known]),
        ("file", f"in {cfg.file}" if cfg.file else "(no file)", read_entries(cfg.file)),
        ("learned", f"learned from outgoing mail, in {cfg.learned_file}",
         read_entries(cfg.learned_file)),
        ("blocked", f"blocked, in {cfg.blocked_file}", read_entries(cfg.blocked_file)),
    ]
    if args.json:
        json.dump([{"address": e.value, "name": e.name, "source": src}
                   for src, _, entries in groups for e in entries], sys.stdout, indent=2)
        print()
        return 0
    for _, title, entries in groups:
        print(f"{title.capitalize() if title[0].islower() else title}: {len(entries)}")
        for e in entries:
            print(f"  {show_hidden(str(e))}")
    return 0


def _config_and_entry(args: argparse.Namespace) -> tuple[Config, Entry] | None:
    """The config and the address the command names; None after saying what is wrong."""
    config = load_or_report(args)
    if config is None:
        return None
    try:
        return config, parse_entry(args.address)
    except ValueError as e:
        print(str(e), file=sys.stderr)
        return None


def cmd_add(args: argparse.Namespace) -> int:
    loaded = _config_and_entry(args)
    if loaded is None:
        return 2
    config, entry = loaded
    cfg = senders_config(config)
    path = cfg.file or cfg.learned_file
    added = add_entry(path, entry)
    print(f"{entry} {'added to' if added else 'is already in'} {path}.")
    return 0


def cmd_block(args: argparse.Namespace) -> int:
    loaded = _config_and_entry(args)
    if loaded is None:
        return 2
    config, entry = loaded
    added = block_sender(config, str(entry))
    print(f"{entry} {'is now blocked' if added else 'was already blocked'}: "
          "their mail will always be held.")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    loaded = _config_and_entry(args)
    if loaded is None:
        return 2
    config, entry = loaded
    removed = remove_everywhere(config, str(entry))
    cfg = senders_config(config)
    in_config = any(parse_entry(k).value == parse_entry(str(entry)).value for k in cfg.known)
    if removed:
        print(f"{entry} removed from: {', '.join(removed)}.")
    if in_config:
        print(f"{entry} is also listed in {config.source} ([senders] known); remove it there.",
              file=sys.stderr)
    if not removed and not in_config:
        print(f"{entry} is not on any list.", file=sys.stderr)
        return 1
    return 0
