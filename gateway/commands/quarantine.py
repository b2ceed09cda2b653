"""``council-gateway quarantine``: the clerk's review of held mail from the command line.

Every decision goes through :func:`gateway.quarantine.resolve.resolve`, the same function the web
page uses, so each is audited the same way; releasing runs the rest of the pipeline (footer, DKIM
signature ...). ``show`` never opens an attachment or runs anything from the message: see
:mod:`gateway.quarantine.view`. Held mail is worded by :func:`gateway.quarantine.explain.explain`.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from datetime import datetime, timezone

from gateway.assembly import KINDS, assemble
from gateway.commands.common import add_config_option, load_or_report, with_config
from gateway.config import Config
from gateway.policy import Policy, PolicyConfig
from gateway.quarantine.digest import build_digest, send_digest, week_in_numbers
from gateway.quarantine.explain import explain
from gateway.quarantine.resolve import resolve
from gateway.quarantine.store import HeldMessage, NotFound, QuarantineStore
from gateway.quarantine.view import format_view, view
from gateway.rules.wording import one_line, show_hidden

__all__ = ["add_parser"]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "quarantine",
        help="review held mail: list, show, release, delete, block a sender",
        description="Review the mail the gateway held for the clerk. Nothing in a held message "
                    "is opened or run by these commands.",
    )
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    def action(name: str, help_text: str, func: object, with_id: bool = True) -> \
            argparse.ArgumentParser:
        ap = sub.add_parser(name, help=help_text, description=help_text)
        add_config_option(ap)
        if with_id:
            ap.add_argument("id", metavar="ID", help="the held message's id (from 'list')")
        ap.set_defaults(func=func)
        return ap

    ap = action("list", "list held mail: id, date, sender, recipients, subject and why",
                cmd_list, with_id=False)
    ap.add_argument("--json", action="store_true", help="print JSON for programs")
    action("show", "show one held message as plain text (headers, text, attachment list); "
                   "nothing in it is opened", cmd_show)
    ap = action("release", "pass a held message on: the checks after the one that held it run, "
                           "then the footer and signature, then delivery; it leaves the "
                           "quarantine only once delivered", cmd_release)
    ap.add_argument("--trust-sender", action="store_true",
                    help="also add the sender to the known senders, so their mail is not held")
    ap.add_argument("--force", action="store_true",
                    help="release mail held for a dangerous attachment (for the IT volunteer; "
                         "recorded in the audit log). A virus is never released.")
    action("block-sender", "always hold mail from this message's sender, and delete this "
                           "message", cmd_block)
    action("delete", "delete a held message", cmd_delete)
    ap = action("purge", "delete held mail older than [quarantine] retention_days", cmd_purge,
                with_id=False)
    ap.add_argument("--days", type=int, default=None,
                    help="delete mail older than this many days instead")
    ap = action("digest", "print the digest of held mail, or send it to [quarantine] digest_to",
                cmd_digest, with_id=False)
    ap.add_argument("--send", action="store_true", help="send it now instead of printing it")


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:
        return "cli"


def _config(args: argparse.Namespace) -> Config | None:
    return load_or_report(args)


def _policy(config: Config) -> Policy:
    return Policy(KINDS, config.section(PolicyConfig))


def _line(text: str) -> str:
    return one_line(text, 10_000)


def _as_dict(policy: Policy, h: HeldMessage) -> dict[str, object]:
    why = explain(policy, h)
    return {
        "id": h.id,
        "received_at": h.received_at.isoformat(),
        "direction": h.direction,
        "mail_from": h.mail_from,
        "rcpt_tos": list(h.rcpt_tos),
        "from": h.from_header,
        "subject": h.subject,
        "reasons": list(h.reasons),
        "client_address": h.client_address,
        "size": h.size,
        "severity": why.severity.word,
        "label": why.label,
        "advice": why.advice,
        "release": why.release.value,
        "held_by": h.held_by,
        "findings": [{"filter": f.filter, "code": f.code, "severity": f.severity.word,
                      "text": f.text} for f in h.findings],
    }


@with_config
def cmd_list(args: argparse.Namespace, config: Config) -> int:
    held = QuarantineStore(config.quarantine.path).list()
    policy = _policy(config)
    if args.json:
        json.dump([_as_dict(policy, h) for h in held], sys.stdout, indent=2, ensure_ascii=False)
        print()
        return 0
    if not held:
        print("Nothing is held.")
        return 0
    print(f"{len(held)} message{'s' if len(held) != 1 else ''} held:\n")
    for h in held:
        why = explain(policy, h)
        print(f"ID       {h.id}   [{why.label.upper()}]")
        print(f"Held     {h.received_at.astimezone().strftime('%Y-%m-%d %H:%M')} ({h.direction})")
        print(f"From     {_line(h.from_header) or '(none)'}  [envelope: <{_line(h.mail_from)}>]")
        print(f"To       {_line(', '.join(h.rcpt_tos))}")
        print(f"Subject  {_line(h.subject) or '(none)'}")
        print("Why      " + "\n         ".join(why.reasons))
        print(f"To do    {why.why_not or why.advice}")
        print()
    return 0


def _load(config: Config, qid: str) -> tuple[HeldMessage, bytes] | None:
    store = QuarantineStore(config.quarantine.path)
    try:
        return store.get(qid), store.read(qid)
    except NotFound:
        print(f"No held message with id {show_hidden(qid)}.", file=sys.stderr)
        return None


@with_config
def cmd_show(args: argparse.Namespace, config: Config) -> int:
    found = _load(config, args.id)
    if found is None:
        return 1
    h, data = found
    why = explain(_policy(config), h)
    meta = [("Held-Id", h.id), ("Held-At", h.received_at.isoformat()),
            ("Envelope-From", f"<{h.mail_from}>"), ("Envelope-To", ", ".join(h.rcpt_tos)),
            ("Looks", why.label)]
    meta += [("Held-Because", r) for r in why.reasons]
    meta += [("Also-Noticed", r) for r in why.noticed]
    meta += [("What-To-Do", why.why_not or why.advice)]
    sys.stdout.write(format_view(view(data), meta))
    return 0


def _resolve(args: argparse.Namespace, action: str) -> int:
    config = _config(args)
    if config is None:
        return 2
    force = bool(getattr(args, "force", False))
    actor = _actor() + (" (forced)" if force else "")
    result = asyncio.run(resolve(assemble(config), args.id, action, actor, force=force))
    print(show_hidden(result.message), file=sys.stdout if result.ok else sys.stderr)
    return 0 if result.ok else 1


def cmd_release(args: argparse.Namespace) -> int:
    return _resolve(args, "release_and_trust" if args.trust_sender else "release")


def cmd_block(args: argparse.Namespace) -> int:
    return _resolve(args, "block_sender")


def cmd_delete(args: argparse.Namespace) -> int:
    return _resolve(args, "delete")


@with_config
def cmd_purge(args: argparse.Namespace, config: Config) -> int:
    days = args.days if args.days is not None else config.quarantine.retention_days
    if days < 1:
        print("--days must be 1 or more.", file=sys.stderr)
        return 2
    removed = QuarantineStore(config.quarantine.path).purge(days)
    print(f"Deleted {removed} held message{'s' if removed != 1 else ''} older than {days} days.")
    return 0


@with_config
def cmd_digest(args: argparse.Namespace, config: Config) -> int:
    if not config.quarantine.digest_to:
        print("No one is set to receive the digest: set [quarantine] digest_to.",
              file=sys.stderr)
        if args.send:
            return 1
    if args.send:
        result = asyncio.run(send_digest(config, _policy(config)))
        if result is None:
            print("Nothing is held; no digest sent.")
            return 0
        if not result.ok:
            print(f"The digest was not delivered: {result.reply}", file=sys.stderr)
            return 1
        print(f"Digest sent to {', '.join(config.quarantine.digest_to)}.")
        return 0
    held = QuarantineStore(config.quarantine.path).list()
    now = datetime.now(timezone.utc)
    week = week_in_numbers(config.gateway.audit_log, now)
    msg = build_digest(config, _policy(config), held, week, now) \
        if config.quarantine.digest_to else None
    if msg is None:
        print("Nothing is held." if not held else f"{len(held)} message(s) held.")
        return 0
    print(f"Subject: {msg['Subject']}\nTo: {msg['To']}\n")
    print(msg.get_content())
    return 0
