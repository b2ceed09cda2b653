"""The corpus's messages: good mail by the kinds a parish council receives, junk by its tricks.

Every message is made from the tables below with one seeded random generator, so the corpus is
the same on every run and nothing in it is chosen to suit the checks.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from tests.junkcorpus import templates as t
from tests.junkcorpus.world import (
    ASSOCIATIONS,
    BROADBAND,
    BY_NAME,
    CHAIR,
    CLERK,
    COUNCIL_ADDRESSES,
    COUNCILLORS,
    COUNCILS,
    FIRST,
    FREE_MAIL,
    HMRC,
    JUNK_DOMAINS,
    LAST,
    LIST_IDS,
    NEWSLETTERS,
    NHS,
    OWN_DOMAINS,
    POLICE,
    SCHOOLS,
    SUPPLIERS,
    Domain,
)
from tests.mailmaker import dkim_sign, make_mail

__all__ = ["Mail", "corpus", "outbound_recipients"]

SEED = 20261201
FORGER = next(d for d in JUNK_DOMAINS if d.name == "bulk-offers.example")
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01" + bytes(range(256)) * 4 + b"\xff\xd9"


@dataclass(frozen=True)
class Mail:
    category: str
    good: bool
    mail_from: str
    client_ip: str
    helo: str
    rcpt: str
    data: bytes
    # Good mail held because an unknown sender attached a file: the policy, not a false hold.
    attachment_from_unknown: bool = False


def _person(rng: random.Random) -> tuple[str, str]:
    return rng.choice(FIRST), rng.choice(LAST)


def _local(first: str, last: str, rng: random.Random) -> str:
    style = rng.randrange(4)
    last = last.replace("'", "").lower()
    return [f"{first.lower()}.{last}", f"{first[0].lower()}{last}",
            f"{first.lower()}{last}{rng.randrange(10, 99)}", f"{last}.{first.lower()}"][style]


def _send(category: str, domain: Domain, local: str, name: str, *, good: bool, rng: random.Random,
          subject: str, body: str, html: str | None = None, rcpt: str | None = None,
          attachments: tuple[tuple[str, str, bytes], ...] = (),
          headers: tuple[tuple[str, str], ...] = (), from_domain: str | None = None,
          ip: str | None = None, mail_from: str | None = None,
          attachment_from_unknown: bool = False, sign: bool = True) -> Mail:
    rcpt = rcpt or rng.choice(COUNCIL_ADDRESSES)
    from_domain = from_domain or domain.name
    address = f"{local}@{from_domain}"
    shown = f'"{name}" <{address}>' if name else address
    data = make_mail(from_=shown, to=rcpt, subject=subject, body=body, html=html,
                     attachments=attachments, headers=headers)
    if sign and domain.dkim and from_domain == domain.name:
        data = dkim_sign(data, domain.name)
    return Mail(category, good, mail_from if mail_from is not None else address,
                ip or domain.ip, f"mail.{domain.name}", rcpt, data,
                attachment_from_unknown)


# ---------------------------------------------------------------------- good mail

def _residents(rng: random.Random, providers: list[Domain], category: str, n: int) -> list[Mail]:
    out = []
    for _ in range(n):
        first, last = _person(rng)
        subject, body = t.resident_message(rng, first)
        html = t.as_html(body) if rng.random() < 0.4 else None
        photo = rng.random() < 0.15
        out.append(_send(category, rng.choice(providers), _local(first, last, rng),
                         f"{first} {last}" if rng.random() < 0.85 else "", good=True, rng=rng,
                         subject=subject, body=body, html=html,
                         attachments=(("photo.jpg", "image/jpeg", JPEG),) if photo else (),
                         attachment_from_unknown=photo))
    return out


def _bodies(rng: random.Random, domains: list[Domain], category: str, n: int,
            maker: t.Maker) -> list[Mail]:
    out = []
    for _ in range(n):
        domain = rng.choice(domains)
        first, last = _person(rng)
        name, local, subject, body = maker(rng, domain.name, first, last)
        out.append(_send(category, domain, local, name, good=True, rng=rng, subject=subject,
                         body=body, html=t.as_html(body) if rng.random() < 0.5 else None))
    return out


def _quotes(rng: random.Random, n: int, known: set[str]) -> list[Mail]:
    out = []
    for _ in range(n):
        domain = rng.choice(SUPPLIERS)
        first, last = _person(rng)
        subject, body, filename = t.quote(rng, first)
        local = rng.choice(["office", "quotes", "accounts", _local(first, last, rng)])
        address = f"{local}@{domain.name}"
        out.append(_send("supplier quote", domain, local, f"{first} {last}", good=True, rng=rng,
                         subject=subject, body=body,
                         attachments=((filename, "application/pdf", PDF),),
                         attachment_from_unknown=address not in known))
    return out


def _newsletters(rng: random.Random, n: int) -> list[Mail]:
    out = []
    for _ in range(n):
        domain = rng.choice(NEWSLETTERS)
        subject, body, html = t.newsletter(rng, domain.name)
        out.append(_send("newsletter the council reads", domain, "news", t.org_name(domain.name),
                         good=True, rng=rng, subject=subject, body=body, html=html,
                         headers=(("List-Id", LIST_IDS[domain.name]), ("Precedence", "bulk"),
                                  ("List-Unsubscribe", f"<https://{domain.name}/unsub>"))))
    return out


def _replies(rng: random.Random, correspondents: list[tuple[str, str]], n: int) -> list[Mail]:
    out = []
    for _ in range(n):
        name, address = rng.choice(correspondents)
        local, _, domain_name = address.partition("@")
        councillor = rng.choice([CLERK, *COUNCILLORS])
        subject, body = t.reply(rng, name.split()[0] if name else "", councillor[0])
        attach = (("signed-form.pdf", "application/pdf", PDF),) if rng.random() < 0.2 else ()
        out.append(_send("reply to a councillor's mail", BY_NAME[domain_name], local, name,
                         good=True, rng=rng, subject=subject, body=body, rcpt=councillor[1],
                         attachments=attach))
    return out


def _correspondents(rng: random.Random) -> list[tuple[str, str]]:
    """People the councillors have written to (so the gateway learned them)."""
    out = []
    for domains in (FREE_MAIL, BROADBAND, COUNCILS, ASSOCIATIONS, SUPPLIERS, SCHOOLS):
        for _ in range(5):
            first, last = _person(rng)
            domain = rng.choice(domains)
            out.append((f"{first} {last}", f"{_local(first, last, rng)}@{domain.name}"))
    return sorted(set(out))


# ---------------------------------------------------------------------- junk

def _junk(category: str, domain: Domain, local: str, name: str, rng: random.Random,
          subject: str, body: str, html: str | None = None, **kw: object) -> Mail:
    return _send(category, domain, local, name, good=False, rng=rng, subject=subject,
                 body=body, html=html, **kw)  # type: ignore[arg-type]


def _junk_mail(rng: random.Random, correspondents: list[tuple[str, str]]) -> list[Mail]:
    out: list[Mail] = []
    council_fakes = JUNK_DOMAINS[:7]
    for _ in range(25):
        domain = rng.choice(council_fakes)
        subject, body, html = t.council_phish(rng, CLERK[0])
        out.append(_junk("look-alike of the council's domain", domain,
                         rng.choice(["clerk", "finance", "office", "chair"]),
                         rng.choice([CLERK[0], "Stanion Parish Council", "Finance Office", ""]),
                         rng, subject, body, html))
    corr_fakes = JUNK_DOMAINS[7:13]
    for _ in range(20):
        domain = rng.choice(corr_fakes)
        first, last = _person(rng)
        subject, body = t.invoice_fraud(rng, first)
        out.append(_junk("look-alike of a correspondent's domain", domain,
                         rng.choice(["accounts", "billing", _local(first, last, rng)]),
                         f"{first} {last}", rng, subject, body))
    for _ in range(25):
        who = rng.choice([CLERK, CHAIR])
        provider = rng.choice(FREE_MAIL)
        first, last = who[0].split()
        subject, body = t.boss_favour(rng, who[0])
        name = rng.choice([who[0], f"{who[0]} (Chair)" if who is CHAIR else f"{who[0]} - Clerk",
                           "Parish Clerk" if who is CLERK else "Chairman"])
        out.append(_junk("display name of the clerk or chair", provider,
                         f"{first.lower()}.{last.lower()}.{rng.choice(['pc', 'office', '2026'])}",
                         name, rng, subject, body))
    for _ in range(20):
        domain = rng.choice(JUNK_DOMAINS[13:])
        subject, body, html = t.link_phish(rng)
        out.append(_junk("link text that disagrees with its target", domain,
                         rng.choice(["security", "noreply", "alerts"]),
                         rng.choice(["HMRC", "Microsoft 365", "Barclays Business", "Lloyds Bank",
                                     "DVLA", "Royal Mail"]), rng, subject, body, html))
    for _ in range(20):
        provider = rng.choice(FREE_MAIL + JUNK_DOMAINS[16:])
        first, last = _person(rng)
        subject, body = t.payment_fraud(rng, first)
        out.append(_junk("payment and gift-card fraud", provider, _local(first, last, rng),
                         f"{first} {last}", rng, subject, body))
    for _ in range(15):
        provider = rng.choice(FREE_MAIL + BROADBAND)
        first, last = _person(rng)
        subject, body = t.chain_letter(rng)
        out.append(_junk("chain letter", provider, _local(first, last, rng), f"{first} {last}",
                         rng, subject, body))
    for _ in range(20):
        domain = rng.choice(JUNK_DOMAINS[13:17])
        subject, body, html = t.advert(rng, domain.name)
        bulk = (("Precedence", "bulk"),) if rng.random() < 0.5 else ()
        out.append(_junk("advert", domain, rng.choice(["sales", "offers", "hello"]),
                         t.org_name(domain.name), rng, subject, body, html, headers=bulk))
    for _ in range(15):
        # The known sender's address in From:, sent (and SPF-passed) through the forger's own
        # bulk mailer, so no signature of the known domain.
        name, address = rng.choice(correspondents)
        local, _, domain_name = address.partition("@")
        subject, body = t.invoice_fraud(rng, name.split()[0])
        out.append(_junk("forged known sender", BY_NAME[domain_name], local, name, rng, subject,
                         body, ip=FORGER.ip, sign=False,
                         mail_from=f"bounce{rng.randrange(999)}@{FORGER.name}"))
    return out


# ---------------------------------------------------------------------- the corpus

def outbound_recipients() -> list[tuple[str, str]]:
    return _correspondents(random.Random(SEED))


def corpus() -> list[Mail]:
    rng = random.Random(SEED)
    correspondents = _correspondents(rng)
    known = {a for _, a in correspondents}
    good = (_residents(rng, FREE_MAIL, "resident on free mail", 60)
            + _residents(rng, BROADBAND, "resident on UK broadband", 45)
            + _residents(rng, OWN_DOMAINS, "resident with their own domain", 10)
            + _bodies(rng, COUNCILS, "neighbouring, district or county council", 40, t.council)
            + _bodies(rng, POLICE, "police", 15, t.police)
            + _bodies(rng, NHS, "NHS", 10, t.nhs)
            + _bodies(rng, SCHOOLS, "school", 12, t.school)
            + _bodies(rng, ASSOCIATIONS, "county association and NALC", 18, t.association)
            + _bodies(rng, HMRC, "HMRC and GOV.UK", 10, t.hmrc)
            + _quotes(rng, 30, known)
            + _newsletters(rng, 25)
            + _replies(rng, correspondents, 45))
    return good + _junk_mail(rng, correspondents)
