"""Signs outgoing mail from the council's domains with DKIM, last, over the final bytes.

A signature lets receivers see the mail really comes from the council and was not changed on the
way, so the privacy-notice footer (Kirkham rule 11) and the rest of the message arrive as sent.
Without a configured key the filter passes mail on unsigned and says so once at start.
"""

from __future__ import annotations

import logging
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from gateway.adapters.dkim_signing import (
    KeyError_,
    SigningKey,
    from_domains,
    load_private_key,
    sign,
)
from gateway.config import Section
from gateway.context import MessageContext
from gateway.mime.longlines import conform_line_length
from gateway.mime.workers import in_worker
from gateway.pipeline import Stage
from gateway.verdicts import Change, Finding, Kind, Report, Severity

__all__ = ["KINDS", "DkimConfig", "DkimFilter", "parse_dkim", "signing_keys"]

log = logging.getLogger(__name__)

_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9-]{1,63}\.)+[a-z0-9-]{2,63}$")
_SELECTOR = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})(\.[A-Za-z0-9_][A-Za-z0-9_-]{0,62})*$")
_THREAD_ABOVE = 256 * 1024


@dataclass(frozen=True)
class DkimConfig:
    domain: str  # "" : the first of gateway.council_domains
    selector: str
    private_key_file: Path | None
    ed25519_selector: str = ""
    ed25519_private_key_file: Path | None = None


def _key_file(s: Section, name: str, algorithm: str) -> Path | None:
    path = s.optional_path(name)
    if path is None:
        return None
    if not path.is_file():
        s.problem(name, f'the file "{path}" does not exist '
                        "(make a key with: council-gateway dkim-keygen)")
        return None
    if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        s.problem(name, f'the private key "{path}" can be read by other users of this machine; '
                        f"make it private with: chmod 600 {path}")
    try:
        load_private_key(path, algorithm)
    except KeyError_ as e:
        s.problem(name, f'the file "{path}" {e}')
    except OSError as e:
        s.problem(name, f'the file "{path}" cannot be read: {e.strerror}')
    return path


def _selector(s: Section, name: str, default: str) -> str:
    value = s.text(name, default)
    if value and not _SELECTOR.match(value):
        s.problem(name, f'"{value}" is not a DKIM selector; use letters, digits and hyphens, '
                        'e.g. "gateway"')
        return default
    return value


def parse_dkim(s: Section) -> DkimConfig:
    """``[dkim]``: domain, selector, private_key_file, and optionally ed25519_selector and
    ed25519_private_key_file."""
    domain = s.text("domain", "").strip().lower().rstrip(".")
    if domain and not _DOMAIN.match(domain):
        s.problem("domain", f'"{domain}" is not a domain name')
        domain = ""
    cfg = DkimConfig(
        domain=domain,
        selector=_selector(s, "selector", "gateway"),
        private_key_file=_key_file(s, "private_key_file", "rsa-sha256"),
        ed25519_selector=_selector(s, "ed25519_selector", ""),
        ed25519_private_key_file=_key_file(s, "ed25519_private_key_file", "ed25519-sha256"),
    )
    if cfg.ed25519_private_key_file is not None and cfg.private_key_file is None:
        s.problem("ed25519_private_key_file", "goes with an RSA key: set private_key_file too, "
                                              "as many receivers cannot check ed25519 yet")
    if cfg.ed25519_private_key_file is not None and not cfg.ed25519_selector:
        s.problem("ed25519_selector", "is needed when ed25519_private_key_file is set, and must "
                                      "differ from selector")
    elif cfg.ed25519_selector and cfg.ed25519_selector == cfg.selector:
        s.problem("ed25519_selector", "must differ from selector: each key has its own DNS record")
    s.finish()
    return cfg


KINDS = (
    Kind("dkim.signed", "DKIM-signed for the council's domain"),
    Kind("dkim.not-signed", "not DKIM-signed: the From field is not a council address"),
    Kind("lines-reencoded", "text with lines over 998 characters re-encoded before signing"),
)


def signing_keys(cfg: DkimConfig, council_domains: tuple[str, ...]
                 ) -> tuple[str, tuple[SigningKey, ...]]:
    """The signing domain and the keys to sign with (none when no key file is set)."""
    domain = cfg.domain or council_domains[0]
    keys: list[SigningKey] = []
    if cfg.private_key_file is not None:
        keys.append(SigningKey(domain, cfg.selector, "rsa-sha256",
                               load_private_key(cfg.private_key_file, "rsa-sha256")))
    if cfg.ed25519_private_key_file is not None and keys:
        keys.append(SigningKey(domain, cfg.ed25519_selector, "ed25519-sha256",
                               load_private_key(cfg.ed25519_private_key_file, "ed25519-sha256")))
    return domain, tuple(keys)


class DkimFilter:
    name = "dkim"
    stage = Stage.FINISH
    timeout: float | None = None

    def __init__(self, keys: tuple[SigningKey, ...], domains: frozenset[str]):
        self.keys = keys
        self.domains = domains  # From domains this gateway may sign for

    @classmethod
    def from_config(cls, cfg: DkimConfig, council_domains: tuple[str, ...]) -> DkimFilter:
        domain, keys = signing_keys(cfg, council_domains)
        if not keys:
            log.info("dkim: no private_key_file in [dkim]; outgoing mail is not DKIM-signed "
                     "(make a key with: council-gateway dkim-keygen)")
        return cls(keys, frozenset(council_domains) | {domain})

    async def check(self, ctx: MessageContext) -> Report:
        if not self.keys:
            return Report()
        found = from_domains((await ctx.parsed()).get_all("from", []))
        foreign = sorted({d for d in found if d not in self.domains})
        if not found or foreign:
            who = ", ".join(foreign) if foreign else "no address"
            return Report((Finding(self.name, "dkim.not-signed", Severity.INFO,
                                   f"not DKIM-signed: the From field has {who}, "
                                   "not one of the council's domains"),))
        # A server on the way may break a line over 998 characters, under the signature: such
        # parts are re-encoded first (RFC 5322's limit; the words stay the same).
        if ctx.size > _THREAD_ABOVE:
            conformed = await in_worker(ctx.size, conform_line_length, ctx.data)
            data = conformed or ctx.data
            header = await in_worker(ctx.size, sign, data, self.keys)
        else:
            conformed = conform_line_length(ctx.data)
            data = conformed or ctx.data
            header = sign(data, self.keys)
        selectors = ", ".join(f"s={k.selector}" for k in self.keys)
        findings = [Finding(self.name, "dkim.signed", Severity.INFO,
                            f"DKIM-signed for d={self.keys[0].domain} {selectors}")]
        if conformed is not None:
            findings.append(Finding(self.name, "lines-reencoded", Severity.INFO,
                                    "text with lines over 998 characters re-encoded as "
                                    "quoted-printable (RFC 5322), its words unchanged"))
        # The signature goes on top of the message as it is: new bytes only when re-encoded.
        return Report(tuple(findings), Change(new_bytes=conformed, top=header))
