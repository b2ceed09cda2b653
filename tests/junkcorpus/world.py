"""The world the corpus's mail comes from: Stanion Parish Council, its people, the people and
bodies it deals with, and what each sender's domain publishes in DNS.

All names are invented. Domains under gov.uk, police.uk, nhs.uk and sch.uk are the kinds a
parish council really hears from; none of the records here are the real ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from tests.mailmaker import dkim_txt

COUNCIL = "stanion-pc.gov.uk"
CLERK = ("Margaret Hale", f"clerk@{COUNCIL}")
CHAIR = ("David Okafor", f"cllr.okafor@{COUNCIL}")
COUNCILLORS = [CHAIR, ("Priya Nair", f"cllr.nair@{COUNCIL}"),
               ("Tom Whitcombe", f"cllr.whitcombe@{COUNCIL}")]
COUNCIL_ADDRESSES = [CLERK[1]] + [a for _, a in COUNCILLORS]


@dataclass(frozen=True)
class Domain:
    """A sending domain: the servers it sends from and what it publishes."""

    name: str
    ip: str  # the address its mail arrives from
    spf: str | None = "-all"  # the qualifier of "all", or None for no SPF record
    dkim: bool = True  # signs its mail
    dmarc: str | None = "none"  # the DMARC policy, or None for no record

    def records(self) -> list[tuple[str, str, str]]:
        out = []
        if self.spf is not None:
            out.append((self.name, "TXT", f"v=spf1 ip4:{self.ip} {self.spf}"))
        if self.dkim:
            out.append((f"sel._domainkey.{self.name}", "TXT", dkim_txt()))
        if self.dmarc is not None:
            out.append((f"_dmarc.{self.name}", "TXT", f"v=DMARC1; p={self.dmarc}"))
        return out


def _d(name: str, n: int, **kw: object) -> Domain:
    return Domain(name, f"198.51.100.{n}", **kw)  # type: ignore[arg-type]


# Residents' mail providers: free mail and UK broadband.
FREE_MAIL = [_d("gmail.com", 10), _d("hotmail.co.uk", 11, dmarc="none"),
             _d("outlook.com", 12), _d("yahoo.co.uk", 13, dmarc="reject"),
             _d("icloud.com", 14, dmarc="quarantine"), _d("hotmail.com", 15)]
BROADBAND = [_d("btinternet.com", 20, spf="~all", dmarc=None), _d("sky.com", 21),
             _d("virginmedia.com", 22, spf="~all"), _d("talktalk.net", 23, dkim=False),
             _d("plus.net", 24, dmarc=None), _d("zen.co.uk", 25, dkim=False, dmarc=None)]
# Residents with a family domain that publishes nothing at all.
OWN_DOMAINS = [_d("hartley-family.me.uk", 30, spf=None, dkim=False, dmarc=None),
               _d("greenbank.org.uk", 31, spf=None, dkim=False, dmarc=None),
               _d("millhouse-barn.co.uk", 32, spf="?all", dkim=False, dmarc=None)]

COUNCILS = [_d("brigstock-pc.gov.uk", 40, dmarc="quarantine"),
            _d("stanton-pc.gov.uk", 41),  # a neighbour whose name is one letter from ours
            _d("littlestanion-pc.gov.uk", 42),
            _d("weldon-pc.gov.uk", 43, dmarc="reject"),
            _d("corby.gov.uk", 44, dmarc="reject"),  # the district
            _d("northnorthants.gov.uk", 45, dmarc="reject")]  # the unitary council
POLICE = [_d("northants.police.uk", 50, dmarc="reject")]
NHS = [_d("nhs.net", 51, dmarc="reject"), _d("nnhc.nhs.uk", 52, dmarc="quarantine")]
SCHOOLS = [_d("stanion-primary.northants.sch.uk", 53, spf="~all", dmarc=None),
           _d("prince-william.northants.sch.uk", 54, dkim=False, dmarc=None)]
ASSOCIATIONS = [_d("northantscalc.org.uk", 55), _d("nalc.gov.uk", 56, dmarc="reject"),
                _d("slcc.co.uk", 57)]
HMRC = [_d("hmrc.gov.uk", 58, dmarc="reject"), _d("notifications.service.gov.uk", 59,
                                                   dmarc="reject")]
SUPPLIERS = [_d("greenacre-grounds.co.uk", 60), _d("playsafe-inspections.co.uk", 61, dmarc=None),
             _d("kettering-printworks.co.uk", 62, dkim=False), _d("brightlight-electrical.com", 63),
             _d("hall-hire-cleaning.co.uk", 64, spf="~all", dmarc=None)]
NEWSLETTERS = [_d("mail.northantscalc.org.uk", 65), _d("lists.nalc.gov.uk", 66, dmarc="reject"),
               _d("news.cpre.org.uk", 67), _d("e.northnorthants.gov.uk", 68)]

# Senders of junk: their own domains, with their own (passing) SPF, as junk senders have.
JUNK_DOMAINS = [
    Domain("stanion-pc.org.uk", "192.0.2.10"), Domain("stanionpc.co.uk", "192.0.2.11"),
    Domain("stanion-pc-gov.uk", "192.0.2.12"), Domain("stan1on-pc.com", "192.0.2.13"),
    Domain("stanion-pc.gov.uk.docs-secure.net", "192.0.2.14"),
    Domain("stanion-parish-council.com", "192.0.2.15"),
    Domain("stan\u0456on-pc".encode("idna").decode() + ".gov.uk", "192.0.2.16", spf=None,
           dkim=False, dmarc=None),  # a Cyrillic i; nobody can register it, but anyone can claim it
    Domain("greenacre-ground.co.uk", "192.0.2.20"), Domain("greenacre-grounds.com", "192.0.2.21"),
    Domain("playsafe-lnspections.co.uk", "192.0.2.22"), Domain("nalc-gov.uk", "192.0.2.23"),
    Domain("northantscalc.co.uk", "192.0.2.24"), Domain("brightlight-electrlcal.com", "192.0.2.25"),
    Domain("bulk-offers.example", "192.0.2.30"), Domain("seo-growth.example", "192.0.2.31"),
    Domain("solar-savings.example", "192.0.2.32"), Domain("office-deals.example", "192.0.2.33"),
    Domain("mailer.example", "192.0.2.34", dkim=False, dmarc=None),
]

ALL_DOMAINS = (FREE_MAIL + BROADBAND + OWN_DOMAINS + COUNCILS + POLICE + NHS + SCHOOLS
               + ASSOCIATIONS + HMRC + SUPPLIERS + NEWSLETTERS + JUNK_DOMAINS)
BY_NAME = {d.name: d for d in ALL_DOMAINS}

LIST_IDS = {"mail.northantscalc.org.uk": "Members bulletin <bulletin.northantscalc.org.uk>",
            "lists.nalc.gov.uk": "NALC weekly <weekly.lists.nalc.gov.uk>",
            "news.cpre.org.uk": "CPRE Northants news <news.cpre.org.uk>",
            "e.northnorthants.gov.uk": "Town and parish update <tpu.northnorthants.gov.uk>"}

FIRST = ["Pat", "Sue", "Gary", "Anita", "Joe", "Helen", "Raj", "Linda", "Mark", "Chloe", "Ken",
         "Aisha", "Brian", "Fiona", "Wes", "Olu", "Carol", "Dev", "Irene", "Neil", "Zofia", "Ray"]
LAST = ["Bennett", "Clarke", "Dunmore", "Evans", "Fitch", "Goodwin", "Hussain", "Ingram",
        "Jarvis", "Kowalski", "Lamb", "Mensah", "Norris", "O'Brien", "Patel", "Quinn", "Reeve",
        "Singh", "Turner", "Underwood", "Vaughan", "Walsh"]
STREETS = ["Church Lane", "Brigstock Road", "Cardigan Close", "Ash Grove", "The Green",
           "Kettering Road", "Mill Lane", "Orchard Way", "Stanion Lane", "Wood Street"]
