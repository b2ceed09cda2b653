"""Junk from unknown senders: held for the clerk (or refused, or tagged), with every reason given.

Stanion "Email": junk from unknown sources is not to be opened, attachments only from trusted
sources, no list-serve mail unrelated to council business, chain letters or unsolicited
advertising. Kirkham rule 15: spam and phishing.

Residents are unknown senders too, so being unknown is not junk by itself. The filter

1. checks SPF, DKIM and DMARC and records them in an ``Authentication-Results`` field (removing
   any that claim to be ours but came from outside);
2. holds mail from a blocked sender, whatever else is true;
3. lets a known sender through when the mail is shown to be genuine;
4. otherwise adds up the points of the junk signals (see :mod:`gateway.rules.junk`) and, at
   ``[junk] threshold`` or more, acts as ``[junk] action`` says.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from gateway.adapters.spamd import SpamdScore, spamd_check
from gateway.authcheck import AuthResults, Resolver, authenticate, header_value, strip_own_results
from gateway.authcheck.resolver import parse_dns
from gateway.config import Config, Section, register_section, section
from gateway.context import MessageContext
from gateway.filters import register
from gateway.people.senders import SendersConfig, load_book, parse_senders
from gateway.rules.junk import (
    Signal,
    address_of,
    attachment_names,
    attachments_signal,
    auth_signals,
    blocked_signal,
    bulk_signal,
    display_name_signal,
    forged_known_signal,
    link_signal,
    lookalike_signal,
    message_text,
    phrase_signals,
    reply_to_signal,
)
from gateway.verdicts import Finding, Modify, Quarantine, Reject, Verdict

__all__ = ["JunkConfig", "JunkFilter", "parse_junk", "DEFAULT_FREE_MAIL"]

log = logging.getLogger(__name__)

DEFAULT_FREE_MAIL = (
    "gmail.com", "googlemail.com", "yahoo.com", "yahoo.co.uk", "ymail.com", "hotmail.com",
    "hotmail.co.uk", "outlook.com", "live.com", "live.co.uk", "msn.com", "aol.com", "aol.co.uk",
    "icloud.com", "me.com", "mac.com", "mail.com", "gmx.com", "gmx.co.uk", "proton.me",
    "protonmail.com", "yandex.com", "zoho.com", "btinternet.com", "sky.com", "talktalk.net",
    "virginmedia.com",
)
DEFAULT_PROTECTED = (
    "chairman", "chairwoman", "chair", "chairperson", "vice chairman", "vice chair", "mayor",
    "deputy mayor", "clerk", "town clerk", "parish clerk", "deputy clerk", "councillor", "cllr",
    "treasurer", "rfo", "responsible financial officer", "proper officer", "parish council",
    "town council",
)
DEFAULT_CHAIN = (
    "forward this to", "forward this email to", "forward this message to",
    "send this to everyone", "send this to all your", "pass this on to", "share this with everyone",
    "break the chain", "do not break this chain", "within 24 hours or", "chain letter",
)
DEFAULT_ADVERT = (
    "limited time offer", "act now", "buy now", "order now", "special promotion",
    "exclusive offer", "100% free", "risk-free", "risk free", "no obligation", "best price",
    "lowest price", "click here to buy", "cheap", "discount code", "free trial", "earn money",
    "work from home", "you have been selected", "you have won", "congratulations you",
    "claim your prize", "increase your sales", "seo services", "guaranteed results",
    "unsubscribe from this list",
)


@dataclass(frozen=True)
class JunkConfig:
    threshold: float = 5.0
    action: str = "quarantine"  # quarantine | reject | tag
    tag_prefix: str = "[Possible junk]"
    free_mail_domains: tuple[str, ...] = DEFAULT_FREE_MAIL
    protected_names: tuple[str, ...] = DEFAULT_PROTECTED
    chain_phrases: tuple[str, ...] = DEFAULT_CHAIN
    advert_phrases: tuple[str, ...] = DEFAULT_ADVERT
    known_lists: tuple[str, ...] = ()
    auth_deadline: float = 10.0
    spamd: tuple[str, int] | None = None
    spamd_timeout: float = 10.0
    timeout: float = 60.0


def parse_junk(s: Section) -> JunkConfig:
    spamd_text = s.text("spamd", "")
    spamd = s.hostport("spamd", "127.0.0.1:783") if spamd_text else None
    cfg = JunkConfig(
        threshold=s.number("threshold", 5.0, minimum=0.5),
        action=s.choice("action", "quarantine", ("quarantine", "reject", "tag")),
        tag_prefix=s.text("tag_prefix", "[Possible junk]"),
        free_mail_domains=tuple(d.lower().lstrip("@") for d in
                                s.str_list("free_mail_domains", DEFAULT_FREE_MAIL)),
        protected_names=s.str_list("protected_names", DEFAULT_PROTECTED),
        chain_phrases=s.str_list("chain_phrases", DEFAULT_CHAIN),
        advert_phrases=s.str_list("advert_phrases", DEFAULT_ADVERT),
        known_lists=s.str_list("known_lists", ()),
        auth_deadline=s.number("auth_deadline", 10.0, minimum=0.5, maximum=120),
        spamd=spamd,
        spamd_timeout=s.number("spamd_timeout", 10.0, minimum=0.5, maximum=120),
        timeout=s.number("timeout", 60.0, minimum=1, maximum=600),
    )
    s.finish()
    return cfg


register_section("junk")(parse_junk)


@dataclass(frozen=True)
class Assessment:
    """What the filter concluded about one message (also used by tests and the audit log)."""

    auth: AuthResults
    from_addr: str
    known: bool
    signals: tuple[Signal, ...]
    blocked: bool

    @property
    def score(self) -> float:
        return sum(s.points for s in self.signals)


class JunkFilter:
    name = "junk"
    on_error = "tempfail"

    def __init__(self, config: Config, cfg: JunkConfig, senders: SendersConfig,
                 resolver: Resolver):
        self.config = config
        self.cfg = cfg
        self.senders = senders
        self.resolver = resolver
        self.timeout = cfg.timeout
        self.free_mail = frozenset(cfg.free_mail_domains)

    async def assess(self, ctx: MessageContext) -> Assessment:
        msg = ctx.message
        from_header = str(msg.get("from", "") or "")
        from_addr = address_of(from_header)
        from_domain = from_addr.rpartition("@")[2] if "@" in from_addr else ""
        auth = await authenticate(
            self.resolver, data=ctx.data, client_ip=ctx.client_address,
            mail_from=ctx.envelope.mail_from, helo=ctx.client_helo, from_domain=from_domain,
            deadline=self.cfg.auth_deadline)
        book = load_book(self.config, self.senders)
        blocked = blocked_signal(book, from_addr, ctx.envelope.mail_from)
        if blocked:
            return Assessment(auth, from_addr, False, (blocked,), True)
        if book.known_source(from_addr) and auth.authentic():
            return Assessment(auth, from_addr, True, (), False)
        signals: list[Signal | None] = [
            *auth_signals(auth),
            forged_known_signal(book, from_addr, auth),
            attachments_signal(attachment_names(msg)),
            display_name_signal(from_header, book, self.cfg.protected_names, self.free_mail),
            lookalike_signal(
                [("sender's", from_domain),
                 ("envelope sender's", ctx.envelope.mail_from.rpartition("@")[2]),
                 ("Reply-To", address_of(str(msg.get("reply-to", "") or "")).rpartition("@")[2])],
                book.known_domains(), self.free_mail),
            reply_to_signal(from_addr, str(msg.get("reply-to", "") or ""), self.free_mail),
            bulk_signal(msg, self.cfg.known_lists),
            link_signal(msg),
            *phrase_signals(message_text(msg), self.cfg.chain_phrases, self.cfg.advert_phrases),
        ]
        if self.cfg.spamd is not None:
            signals.append(spamd_signal(await spamd_check(
                self.cfg.spamd, ctx.data, deadline=self.cfg.spamd_timeout), self.cfg.threshold))
        return Assessment(auth, from_addr, False, tuple(s for s in signals if s), False)

    async def check(self, ctx: MessageContext) -> Verdict:
        a = await self.assess(ctx)
        hostname = self.config.gateway.hostname
        headers = [("Authentication-Results", header_value(hostname, a.auth))]
        findings = tuple(Finding(self.name, s.code, s.text) for s in a.signals)
        cleaned = strip_own_results(ctx.data, hostname)
        if a.blocked:
            return Quarantine(tuple(s.text for s in a.signals), findings, tuple(headers))
        if a.score >= self.cfg.threshold:
            reasons = tuple(s.text for s in a.signals)
            if self.cfg.action == "quarantine":
                return Quarantine(reasons, findings, tuple(headers))
            if self.cfg.action == "reject":
                return Reject("This message looks like junk and was refused: "
                              + " ".join(reasons), 554, "5.7.1", findings)
            headers.append(("X-Council-Junk", f"yes; score={a.score:g}; "
                            + "; ".join(s.code for s in a.signals)))
            data = tag_subject(cleaned if cleaned is not None else ctx.data, self.cfg.tag_prefix)
            return Modify(tuple(headers), data, findings)
        return Modify(tuple(headers), cleaned, findings)


def spamd_signal(score: SpamdScore | None, threshold: float) -> Signal | None:
    if score is None:
        return None
    if score.is_spam:
        return Signal("spamassassin", threshold,
                      f"SpamAssassin scores it {score.score:g} points (its limit is "
                      f"{score.required:g}).")
    return None


_SUBJECT = re.compile(rb"^subject:[^\r\n]*(?:\r\n[ \t][^\r\n]*)*\r\n", re.I | re.M)


def tag_subject(data: bytes, prefix: str) -> bytes:
    """Put ``prefix`` in front of the Subject (added if missing); the rest is untouched."""
    head, sep, body = data.partition(b"\r\n\r\n")
    head += b"\r\n"
    tag = prefix.encode("utf-8") + b" "
    m = _SUBJECT.search(head)
    if m is None:
        head = b"Subject: " + prefix.encode("utf-8") + b"\r\n" + head
    elif tag.strip() not in m.group(0):
        start = m.start() + len(b"subject:")
        value = head[start:m.end()].lstrip(b" ")
        head = head[:m.start()] + m.group(0)[:8] + b" " + tag + value + head[m.end():]
    return head[:-2] + (sep or b"\r\n\r\n") + body


@register("junk", order=40, sides=("inbound",),
          summary="holds junk from unknown senders for the clerk, with the reasons")
def build(config: Config) -> JunkFilter:
    return JunkFilter(config, parse_junk(section(config, "junk")),
                      parse_senders(section(config, "senders")),
                      Resolver(parse_dns(section(config, "dns"))))
