"""``council-gateway dkim-keygen``: makes a DKIM key and prints the DNS record to publish."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gateway.adapters.dkim_signing import generate_key, txt_record, write_private_key, zone_line
from gateway.commands.common import add_config_option, load_or_report

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "dkim-keygen",
        help="make a DKIM signing key and print the DNS TXT record to publish",
        description="Make a new DKIM private key (RSA 2048 unless told otherwise), write it "
                    "readable by its owner only, and print the DNS TXT record to publish and "
                    "the [dkim] settings that use it.",
    )
    p.add_argument("--selector", "-s", default="gateway",
                   help="the selector: the name the key is published under (default: gateway)")
    p.add_argument("--domain", "-d", default=None,
                   help="the signing domain (default: the first of gateway.council_domains)")
    p.add_argument("--out", "-o", metavar="PATH", default=None,
                   help="where to write the private key (default: config/dkim-SELECTOR.key)")
    p.add_argument("--algorithm", choices=("rsa", "ed25519"), default="rsa",
                   help="rsa (2048 bits, the default, what every receiver checks) or ed25519 "
                        "(a second, optional signature)")
    p.add_argument("--force", action="store_true", help="replace an existing key file")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    add_config_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    domain = args.domain
    if domain is None:
        config = load_or_report(args)
        if config is None:
            return 2
        domain = config.gateway.council_domains[0]
    domain = domain.strip().lower().rstrip(".")
    algorithm = "rsa-sha256" if args.algorithm == "rsa" else "ed25519-sha256"
    out = Path(args.out) if args.out else Path(f"config/dkim-{args.selector}.key")
    if out.exists() and not args.force:
        print(f"dkim-keygen: {out} already exists; use --force to replace it (mail signed "
              "with the old key fails to verify once its DNS record changes)", file=sys.stderr)
        return 1
    private, public = generate_key(algorithm)
    try:
        write_private_key(out, private, replace=args.force)
    except OSError as e:
        print(f"dkim-keygen: cannot write {out}: {e.strerror}", file=sys.stderr)
        return 1
    txt = txt_record(algorithm, public)
    name = f"{args.selector}._domainkey.{domain}"
    if args.json:
        print(json.dumps({"algorithm": algorithm, "selector": args.selector, "domain": domain,
                          "key_file": str(out), "dns_name": name, "txt": txt}))
        return 0
    keys = ("selector", "private_key_file") if algorithm == "rsa-sha256" else (
        "ed25519_selector", "ed25519_private_key_file")
    print(f"Private key written to {out} (readable by you only; keep it secret).\n")
    print(f"Publish this TXT record in the DNS for {domain}:\n")
    print(f"  name:  {name}")
    print(f"  value: {txt}\n")
    print("As a zone-file line:\n")
    print(f"  {zone_line(args.selector, domain, txt)}\n")
    print("Then put in the gateway's config file:\n")
    print("  [dkim]")
    print(f'  domain = "{domain}"')
    print(f'  {keys[0]} = "{args.selector}"')
    print(f'  {keys[1]} = "{out}"')
    return 0
