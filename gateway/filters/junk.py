"""Junk from unknown senders: held for the clerk (or refused, or tagged), with every reason given.

Stanion "Email": junk from unknown sources is not to be opened, attachments only from trusted
sources, no list-serve mail unrelated to council business, chain letters or unsolicited
advertising. Kirkham rule 15: spam and phishing.

Residents are unknown senders too, so being unknown is not junk by itself. The filter

1. checks SPF, DKIM and DMARC and records them in an ``Authentication-Results`` field (any
   that claimed to be ours were removed when the message arrived);
2. reports mail from a blocked sender (``blocked-sender``), whatever else is true;
3. lets a known sender, or a mailing list the council reads (``known_lists``), through when the
   mail is shown to be genuine;
4. otherwise reports each junk signal (see :mod:`gateway.rules.junk`) and, when their points
   add up to ``[junk] threshold`` or more, the finding ``junk``, which the policy holds.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from gateway.adapters.spamd import SpamdScore, spamd_check
from gateway.authcheck import AuthResults, Resolver, authenticate, header_value
from gateway.config import Section
from gateway.context import MessageContext
from gateway.mime.workers import in_worker
from gateway.people.senders import SenderBook, SendersConfig, load_book
from gateway.pipeline import Stage
from gateway.rules.junk import (
    Signal,
    address_of,
    attachment_names,
    attachments_signal,
    auth_signals,
    blocked_signal,
    body_text,
    bulk_signal,
    forged_known_signal,
    html_readings,
    link_signal,
    own_domain_signal,
    reads_list,
)
from gateway.rules.junk_names import (
    Likeness,
    display_name_signal,
    likenesses,
    lookalike_verdict,
    reply_to_signal,
)
from gateway.rules.junk_phrases import phrase_signals
from gateway.rules.lookalike import in_public_body_registry, skeleton
from gateway.rules.wording import ascii_safe
from gateway.verdicts import Action, Change, Finding, Kind, Report

__all__ = ["DEFAULT_FREE_MAIL", "KINDS", "JunkConfig", "JunkFilter", "parse_junk"]

log = logging.getLogger(__name__)

NAME = "junk"
JUNK_ADVICE = ("Delete it unless you know the sender; if you do, release it and trust the "
               "sender so their mail is no longer held.")
SIGNALS = (
    ("dmarc-fail", "the sender's domain says mail like this is not from it"),
    ("spf-fail", "sent by a server the sender's domain does not allow"),
    ("spf-softfail", "sent by a server the sender's domain probably does not use"),
    ("dkim-fail", "a digital signature that does not match the message"),
    ("council-domain-from-outside", "the council's own domain on mail from outside, without "
     "the council's signature"),
    ("forged-known-sender", "a known sender's address on mail not shown to be theirs"),
    ("attachment-unknown-sender", "an attachment from a sender the council does not know"),
    ("display-name-impersonation", "a name that borrows a council title or a known person"),
    ("lookalike-domain", "a domain made to look like a known one"),
    ("reply-to-free-mail", "replies diverted to a free-mail address"),
    ("bulk-mail", "mailing-list or bulk mail the council has not said it reads"),
    ("link-mismatch", "a link that shows one address and leads to another"),
    ("chain-letter", "reads like a chain letter"),
    ("advertising", "reads like unsolicited advertising"),
    ("payment-fraud", "asks for money, gift cards or new bank details the way fraudsters do"),
    ("spamassassin", "SpamAssassin, the spam checker, scores it as spam"),
)
KINDS = (
    Kind("junk", "junk from an unknown sender: the signals add up to [junk] threshold",
         Action.HOLD, Action.DELIVER, advice=JUNK_ADVICE),
    Kind("blocked-sender", "a sender the clerk has blocked", Action.HOLD, Action.DELIVER,
         advice="Delete it; you blocked this sender before."),
    *(Kind(code, summary) for code, summary in SIGNALS),
)

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
# The titles above that a public body's own officers may use (not the names a council adds).
TITLES = frozenset(t.casefold() for t in DEFAULT_PROTECTED)
# Each phrase counts half: a resident may well ask for a message to be passed on.
DEFAULT_CHAIN = (
    "forward this to everyone", "forward this to all your", "forward this to ten",
    "forward this to 10", "send this to everyone", "send this to all your", "send this to ten",
    "send this to 10", "everyone in your address book", "pass this on to ten",
    "passes this on to ten", "share this with everyone you know", "break the chain",
    "do not break this chain", "within 24 hours or", "chain letter", "bad luck will",
    "this is not a joke", "this really works",
)
DEFAULT_ADVERT = (
    "limited time offer", "act now", "buy now", "order now", "special promotion",
    "exclusive offer", "100% free", "risk-free", "risk free", "no obligation", "best price",
    "lowest price", "click here to buy", "cheap", "discount code", "free trial", "earn money",
    "work from home", "you have been selected", "you have won", "congratulations you",
    "claim your prize", "increase your sales", "seo services", "guaranteed results",
    "unsubscribe from this list",
)
# Payment diversion, gift-card and advance-fee fraud (Action Fraud's commonest against small
# organisations); each phrase counts half, like advertising.
DEFAULT_FRAUD = (
    "gift card", "gift cards", "itunes card", "itunes cards", "google play card",
    "scratch off", "send me the codes", "email me the codes", "photos of the codes",
    "change of bank details", "changed our bank", "new bank details",
    "bank details have changed", "account details have changed", "details have been updated",
    "payment details updated", "update your records", "new sort code", "to our new account",
    "to the new account", "wire transfer", "bank transfer now", "make payment today",
    "process the outstanding balance", "keep this between us", "i am in a meeting",
    "tied up in meetings", "cannot take calls", "send the fee", "release the funds",
)


@dataclass(frozen=True)
class JunkConfig:
    threshold: float = 5.0
    tag_prefix: str = "[Possible junk]"
    free_mail_domains: tuple[str, ...] = DEFAULT_FREE_MAIL
    protected_names: tuple[str, ...] = DEFAULT_PROTECTED
    chain_phrases: tuple[str, ...] = DEFAULT_CHAIN
    advert_phrases: tuple[str, ...] = DEFAULT_ADVERT
    fraud_phrases: tuple[str, ...] = DEFAULT_FRAUD
    known_lists: tuple[str, ...] = ()
    auth_deadline: float = 10.0
    spamd: tuple[str, int] | None = None
    spamd_timeout: float = 10.0
    spamd_learn: bool = True  # the clerk's decisions on held junk teach spamd's Bayes filter
    timeout: float = 60.0


def parse_junk(s: Section) -> JunkConfig:
    spamd_text = s.text("spamd", "")
    spamd = s.hostport("spamd", "127.0.0.1:783") if spamd_text else None
    cfg = JunkConfig(
        threshold=s.number("threshold", 5.0, minimum=0.5),
        tag_prefix=s.text("tag_prefix", "[Possible junk]"),
        free_mail_domains=tuple(d.lower().lstrip("@") for d in
                                s.str_list("free_mail_domains", DEFAULT_FREE_MAIL)),
        protected_names=s.str_list("protected_names", DEFAULT_PROTECTED),
        chain_phrases=s.str_list("chain_phrases", DEFAULT_CHAIN),
        advert_phrases=s.str_list("advert_phrases", DEFAULT_ADVERT),
        fraud_phrases=s.str_list("fraud_phrases", DEFAULT_FRAUD),
        known_lists=s.str_list("known_lists", ()),
        auth_deadline=s.number("auth_deadline", 10.0, minimum=0.5, maximum=120),
        spamd=spamd,
        spamd_timeout=s.number("spamd_timeout", 10.0, minimum=0.5, maximum=120),
        spamd_learn=s.flag("spamd_learn", True),
        timeout=s.number("timeout", 60.0, minimum=1, maximum=600),
    )
    s.finish()
    return cfg


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


@dataclass(frozen=True)
class ContentSignals:
    """The signals read from the message's content, worked out before its SPF, DKIM and
    DMARC are known; :meth:`given` completes them once they are."""

    attachments: Signal | None
    display: tuple[Signal | None, Signal | None]  # from anyone, from a public body's officer
    public_registry: bool  # the From domain is in a public bodies' registry
    likes: tuple[Likeness, ...]
    rest: tuple[Signal | None, ...]  # Reply-To, bulk, links, phrases

    def given(self, from_domain: str, auth: AuthResults) -> list[Signal | None]:
        shown = auth.shown_domains()
        officer = from_domain in shown and self.public_registry
        return [self.attachments, self.display[1 if officer else 0],
                lookalike_verdict(self.likes, shown), *self.rest]


@dataclass(frozen=True)
class Reading:
    """What :meth:`JunkFilter.prepare` reads from the message alone."""

    from_header: str
    lists: bool  # from a mailing list the council reads
    book: SenderBook  # the senders lists as they were read then
    content: ContentSignals | Exception | None  # None: not read (the sender is known)


class JunkFilter:
    name = NAME
    stage = Stage.CHECK

    def __init__(self, cfg: JunkConfig, senders: SendersConfig, resolver: Resolver, *,
                 hostname: str, council_domains: tuple[str, ...]):
        self.cfg = cfg
        self.senders = senders
        self.resolver = resolver
        self.hostname = hostname
        self.council_domains = council_domains
        self.timeout: float | None = cfg.timeout
        self.free_mail = frozenset(cfg.free_mail_domains)
        skeleton("")  # the look-alike table is built now, not while the first message waits

    def prepare(self, ctx: MessageContext) -> Reading:
        """What junk reads from the message alone, in a worker thread (its From field may be
        8 KiB of what the header parser is slowest on): the From, whether it is a list the
        council reads and, for a sender the council does not know, the content signals."""
        msg = ctx.message
        from_header = str(msg.get("from", "") or "")
        from_addr = address_of(from_header)
        from_domain = from_addr.rpartition("@")[2] if "@" in from_addr else ""
        lists = bool(from_domain) and reads_list(msg, self.cfg.known_lists, from_domain)
        book = load_book(self.senders, self.council_domains)
        content: ContentSignals | Exception | None = None
        if not (book.known_source(from_addr) or lists):  # a known sender may need none
            try:
                content = self._content_signals(ctx, from_header, from_addr, book)
            except Exception as e:  # raised where the signals are needed, as before
                content = e
        return Reading(from_header, lists, book, content)

    async def assess(self, ctx: MessageContext) -> Assessment:
        # Reading the message (its From, its HTML, every phrase) is CPU work: done in the
        # pipeline's visit to a worker thread, or here in one (on a released message).
        reading: Reading = ctx.prepared(NAME) or await in_worker(ctx.size, self.prepare, ctx)
        from_header = reading.from_header
        from_addr = address_of(from_header)
        from_domain = from_addr.rpartition("@")[2] if "@" in from_addr else ""
        auth = await authenticate(
            self.resolver, data=ctx.content, client_ip=ctx.client_address,
            mail_from=ctx.envelope.mail_from, helo=ctx.client_helo, from_domain=from_domain,
            deadline=self.cfg.auth_deadline)
        book = reading.book  # read in the worker: its files' times are looked up off the loop
        blocked = blocked_signal(book, from_addr, ctx.envelope.mail_from)
        if blocked:
            return Assessment(auth, from_addr, False, (blocked,), True)
        own = own_domain_signal(self.council_domains, from_addr, ctx.envelope.mail_from, auth)
        known = book.known_source(from_addr) or reading.lists
        if own is None and known and auth.authentic():
            return Assessment(auth, from_addr, True, (), False)
        content = reading.content
        if isinstance(content, Exception):
            raise content
        if content is None:
            # It is given ctx, not the parsed message: a worker thread lets go of a call's
            # arguments only when it next runs, and a parse held there after it went stale
            # would sit beside the next check's copies.
            content = await in_worker(ctx.size, self._content_signals, ctx, from_header,
                                      from_addr, book)
        signals = [own, *auth_signals(auth), forged_known_signal(book, from_addr, auth),
                   *content.given(from_domain, auth)]
        if self.cfg.spamd is not None:
            signals.append(spamd_signal(await spamd_check(
                self.cfg.spamd, ctx.content, deadline=self.cfg.spamd_timeout),
                self.cfg.threshold))
        return Assessment(auth, from_addr, False, tuple(s for s in signals if s), False)

    def _content_signals(self, ctx: MessageContext, from_header: str, from_addr: str,
                         book: SenderBook) -> ContentSignals:
        msg = ctx.message
        from_domain = from_addr.rpartition("@")[2] if "@" in from_addr else ""
        reply_to = str(msg.get("reply-to", "") or "")
        # A council's, police force's or NHS body's clerk or chair may sign as such (not a
        # university's or school's: their students and pupils have addresses there too).
        public_registry = in_public_body_registry(from_domain)
        anyone = display_name_signal(from_header, book, self.cfg.protected_names, self.free_mail)
        officer = (display_name_signal(from_header, book, self.cfg.protected_names,
                                       self.free_mail, allowed=TITLES)
                   if public_registry else anyone)
        html = html_readings(msg)
        return ContentSignals(
            attachments_signal(attachment_names(msg)), (anyone, officer), public_registry,
            likenesses(
                [("sender's", from_domain),
                 ("envelope sender's", ctx.envelope.mail_from.rpartition("@")[2]),
                 ("Reply-To", address_of(reply_to).rpartition("@")[2])],
                book.known_domains(), self.free_mail, book.council_domains),
            (reply_to_signal(from_addr, reply_to, self.free_mail),
             bulk_signal(msg, self.cfg.known_lists),
             link_signal(msg, html),
             *phrase_signals(body_text(msg, html), self.cfg.chain_phrases,
                             self.cfg.advert_phrases, self.cfg.fraud_phrases)))

    async def check(self, ctx: MessageContext) -> Report:
        a = await self.assess(ctx)
        results = ("Authentication-Results", header_value(self.hostname, a.auth))
        # Fields claiming to be ours were removed when the message arrived.
        change = Change(add_headers=(results,))
        findings = [Finding(NAME, s.code, s.severity, s.text) for s in a.signals]
        if a.blocked or a.score < self.cfg.threshold:
            return Report(tuple(findings), change)
        reasons = " ".join(s.text for s in a.signals)
        findings.insert(0, Finding(
            NAME, "junk", max(s.severity for s in a.signals),
            "Looks like junk from a sender the council does not know.",
            ascii_safe(f"This message looks like junk and was refused: {reasons}")))
        junk_header = ("X-Council-Junk", f"yes; score={a.score:g}; "
                       + "; ".join(s.code for s in a.signals))
        return Report(tuple(findings), change,
                      tag=Change(add_headers=(junk_header,), subject_prefix=self.cfg.tag_prefix))


def spamd_signal(score: SpamdScore | None, threshold: float) -> Signal | None:
    if score is None:
        return None
    if score.is_spam:
        return Signal("spamassassin", threshold,
                      f"The spam checker (SpamAssassin) scores it {score.score:g} points; it "
                      f"counts {score.required:g} or more as spam.")
    return None
