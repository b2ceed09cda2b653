"""Each junk signal on its own, with tables of inputs (Stanion "Email"; Kirkham rule 15).

Every signal is one plain-English sentence the clerk can read without knowing the names of the
checks behind it, and carries how serious it is.
"""

from __future__ import annotations

import re

import pytest

from gateway.adapters.spamd import SpamdScore
from gateway.authcheck import AuthResults, DkimResult, DmarcResult, SpfResult
from gateway.context import parse_message
from gateway.filters.junk import (
    DEFAULT_ADVERT,
    DEFAULT_CHAIN,
    DEFAULT_FRAUD,
    DEFAULT_PROTECTED,
    KINDS,
    spamd_signal,
)
from gateway.mime.headers import tag_subject
from gateway.people.senders import SenderBook
from gateway.rules.junk import (
    STRONG,
    attachment_names,
    attachments_signal,
    auth_signals,
    blocked_signal,
    body_text,
    bulk_signal,
    forged_known_signal,
    link_signal,
    own_domain_signal,
    reads_list,
)
from gateway.rules.junk_names import (
    display_name_signal,
    lookalike_signal,
    reply_to_signal,
)
from gateway.rules.junk_phrases import phrase_signals
from gateway.rules.lookalike import in_public_body_registry, lookalike, skeleton
from gateway.verdicts import Severity
from tests.mailmaker import make_mail

FREE = frozenset({"gmail.com", "hotmail.com", "outlook.com"})
BOOK = SenderBook(
    council_domains=frozenset({"stanion-pc.gov.uk"}),
    known={"jane@nalc.gov.uk": "file", "@northants.gov.uk": "config",
           "friend@gmail.com": "learned"},
    blocked=frozenset({"spammer@bad.example", "@worse.example"}),
    names=(("Jane Smith", "jane@nalc.gov.uk"),),
)
KNOWN_DOMAINS = BOOK.known_domains()


def auth(spf="none", dkim=(), dmarc="none", policy="none", domain="sender.example"):
    return AuthResults(SpfResult(spf, domain, "mailfrom"),
                       tuple(DkimResult(r, domain, "s") for r in dkim),
                       DmarcResult(dmarc, domain, policy, requested=policy), domain)


@pytest.mark.parametrize("a,codes", [
    (auth(), []),
    (auth(spf="pass", dmarc="pass"), []),
    (auth(spf="fail"), ["spf-fail"]),
    (auth(spf="softfail"), ["spf-softfail"]),
    (auth(dkim=("fail",)), ["dkim-fail"]),
    (auth(dkim=("fail", "pass")), []),
    (auth(dmarc="fail", policy="reject"), ["dmarc-fail"]),
    (auth(dmarc="fail", policy="quarantine"), ["dmarc-fail"]),
    (auth(dmarc="fail", policy="none"), []),
    (auth(spf="temperror", dmarc="temperror"), []),
])
def test_authentication_failed_or_dmarc_says_reject(a, codes):
    assert [s.code for s in auth_signals(a)] == codes


def test_dmarc_reason_in_plain_english():
    [s] = auth_signals(auth(dmarc="fail", policy="reject", domain="bank.example"))
    assert s.text == ("Failed authentication: bank.example asks receivers to reject mail that "
                      "cannot be shown to come from it, and this message cannot.")
    assert s.severity is Severity.HIGH


@pytest.mark.parametrize("a,text,severity", [
    (auth(spf="fail", domain="spf.example"),
     "Failed authentication: the server that sent it is not one that spf.example allows to "
     "send its mail.", Severity.MEDIUM),
    (auth(spf="softfail", domain="spf.example"),
     "The server that sent it is probably not one that spf.example uses for its mail.",
     Severity.LOW),
    (auth(dkim=("fail",), domain="signed.example"),
     "Failed authentication: its digital signature from signed.example does not match the "
     "message (it was changed on the way, or forged).", Severity.MEDIUM),
    (auth(dmarc="fail", policy="quarantine", domain="bank.example"),
     "Failed authentication: bank.example asks receivers to quarantine mail that cannot be "
     "shown to come from it, and this message cannot.", Severity.HIGH),
])
def test_each_authentication_failure_in_plain_english(a, text, severity):
    [s] = auth_signals(a)
    assert (s.text, s.severity) == (text, severity)


@pytest.mark.parametrize("from_addr,a,forged", [
    ("jane@nalc.gov.uk", auth(spf="fail", domain="nalc.gov.uk"), True),
    ("jane@nalc.gov.uk", auth(domain="nalc.gov.uk"), True),  # nothing shows it is genuine
    ("jane@nalc.gov.uk", auth(spf="pass", domain="nalc.gov.uk"), False),  # aligned pass
    ("jane@nalc.gov.uk", auth(spf="temperror", dmarc="temperror", domain="nalc.gov.uk"), False),
    ("clerk@stanion-pc.gov.uk", auth(dmarc="fail", policy="reject",
                                     domain="stanion-pc.gov.uk"), True),
    ("stranger@else.example", auth(spf="fail"), False),  # not known: nothing to forge
])
def test_forged_known_sender(from_addr, a, forged):
    assert (forged_known_signal(BOOK, from_addr, a) is not None) == forged


def test_forged_known_sender_in_plain_english():
    s = forged_known_signal(BOOK, "jane@nalc.gov.uk", auth(spf="fail", domain="nalc.gov.uk"))
    assert s is not None and s.severity is Severity.HIGH
    assert s.text == ("Claims to come from a known sender (jane@nalc.gov.uk), but nothing shows "
                      "that it really does: it has no valid digital signature of that domain, "
                      "and the server that sent it is not one the domain names.")
    council = forged_known_signal(BOOK, "clerk@stanion-pc.gov.uk",
                                  auth(dmarc="fail", policy="reject", domain="stanion-pc.gov.uk"))
    assert council is not None
    assert council.text.startswith("Claims to come from a council address "
                                   "(clerk@stanion-pc.gov.uk), but nothing shows")


@pytest.mark.parametrize("from_addr,mail_from,blocked", [
    ("spammer@bad.example", "", True),
    ("x@ok.example", "SPAMMER@bad.example", True),
    ("anyone@worse.example", "", True),
    ("x@ok.example", "y@ok.example", False),
])
def test_blocked_sender(from_addr, mail_from, blocked):
    assert (blocked_signal(BOOK, from_addr, mail_from) is not None) == blocked


def test_blocked_sender_in_plain_english():
    s = blocked_signal(BOOK, "x@ok.example", "SPAMMER@bad.example")
    assert s is not None and (s.code, s.severity) == ("blocked-sender", Severity.MEDIUM)
    assert s.text == "The clerk has blocked this sender (SPAMMER@bad.example)."


def test_attachment_from_unknown_sender():
    data = make_mail(attachments=(("invoice.pdf", "application/pdf", b"%PDF-1.4"),
                                  ("photo.jpg", "image/jpeg", b"\xff\xd8\xff")))
    names = attachment_names(parse_message(data))
    assert names == ["invoice.pdf", "photo.jpg"]
    s = attachments_signal(names)
    assert s is not None and s.points >= 5
    assert s.text == ("Has 2 attachments (invoice.pdf, photo.jpg) from a sender the council does "
                      "not know; attachments are opened only from trusted sources.")
    assert s.severity is Severity.MEDIUM
    assert attachment_names(parse_message(make_mail())) == []
    assert attachments_signal([]) is None


def test_inline_image_is_not_an_attachment_but_a_forwarded_message_is():
    raw = (b"From: a@b.example\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
           b'Content-Type: multipart/mixed; boundary="B"\r\n\r\n'
           b"--B\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
           b"--B\r\nContent-Type: image/png\r\nContent-Disposition: inline\r\n\r\nxx\r\n"
           b"--B\r\nContent-Type: message/rfc822\r\n\r\nSubject: fwd\r\n\r\nold\r\n"
           b"--B--\r\n")
    assert attachment_names(parse_message(raw)) == ["a forwarded message"]


@pytest.mark.parametrize("from_header,expected", [
    ('"Chairman" <someone@gmail.com>',
     'Looks like phishing: the name says "Chairman" but the address is a free-mail one '
     "(someone@gmail.com)."),
    ("Town Clerk <office@clerk-services.example>",
     'Looks like phishing: the name says "Town Clerk" but the address is '
     "office@clerk-services.example, not a council address."),
    ('"clerk@stanion-pc.gov.uk" <x@evil.example>',
     'Looks like phishing: the name shows the address "clerk@stanion-pc.gov.uk" but the mail '
     "comes from x@evil.example."),
    ("Jane Smith <jane.smith@hotmail.com>",
     'Looks like phishing: "Jane Smith" is the name of a known sender (jane@nalc.gov.uk), but '
     "this mail comes from jane.smith@hotmail.com."),
    ("Pat Resident <pat@gmail.com>", None),
    ("Peter Clerkenwell <peter@gmail.com>", None),  # whole words only
    ("Clerk <clerk@stanion-pc.gov.uk>", None),  # the council's own address
    ("Jane Smith <jane@nalc.gov.uk>", None),
])
def test_display_name_impersonation(from_header, expected):
    s = display_name_signal(from_header, BOOK, DEFAULT_PROTECTED, FREE)
    assert (s.text if s else None) == expected
    assert s is None or s.severity is Severity.HIGH


def test_hidden_characters_in_a_quoted_name_are_shown_one_way():
    s = display_name_signal('"Chair\u202eman" <someone@gmail.com>', BOOK, DEFAULT_PROTECTED,
                            FREE)
    assert s is not None
    assert s.text == ('Looks like phishing: the name says "Chair<U+202E>man" but the address is a '
                      "free-mail one (someone@gmail.com).")


@pytest.mark.parametrize("domain,imitates", [
    ("stanion-pc.gov.co", "stanion-pc.gov.uk"),  # same name, other suffix
    ("stanion-pc.org.uk", "stanion-pc.gov.uk"),
    ("stanlon-pc.gov.uk", "stanion-pc.gov.uk"),  # l for i (not shown to be a public body)
    ("stan1on-pc.co.uk", "stanion-pc.gov.uk"),
    ("stanton-pc.org.uk", "stanion-pc.gov.uk"),  # found, but weak when shown genuine: below
    ("stanion-pc-gov.uk", "stanion-pc.gov.uk"),
    ("stanionpc.com", "stanion-pc.gov.uk"),  # hyphen dropped
    ("stainon-pc.gov.uk", "stanion-pc.gov.uk"),  # swapped letters
    ("stänion-pc.gov.uk".encode("idna").decode(), "stanion-pc.gov.uk"),  # accent, punycode
    ("stanіon-pc.gov.uk".encode("idna").decode(), "stanion-pc.gov.uk"),  # Cyrillic i
    ("stanion-pc.gov.uk.mail-secure.example", "stanion-pc.gov.uk"),  # worn as a prefix
    ("secure.stanion-pc.gov.uk.example.com", "stanion-pc.gov.uk"),
    ("northants-gov.uk", "northants.gov.uk"),
    ("n0rthants.gov.uk", "northants.gov.uk"),
    ("nalc.gov.uk", None),  # the known domain itself
    ("mail.nalc.gov.uk", None),  # a subdomain of it
    ("resident.example", None),
    ("mail.com", None),  # free-mail domains are only matched by look, not by distance
    ("gmai1.com", "gmail.com"),
    ("rnail.com", None),
    ("gmail.co.uk", None),  # a mail provider under another ending is not an imitation
    ("hotmail.co.uk", None),
    ("northants.police.uk", None),  # both in registries only public bodies can join
    ("northants.nhs.uk", None),
    ("nalc.org.uk", "nalc.gov.uk"),  # anyone can register .org.uk
    ("stanion-pc.example.net", "stanion-pc.gov.uk"),  # the council's name as a subdomain
    ("nalc.example.net", None),  # a short name is only compared as a whole
    ("stanion-pc.gov.uk-secure.example", "stanion-pc.gov.uk"),
    ("stanion-pc.govuk.example", "stanion-pc.gov.uk"),
    ("stanlon-pc.gov.uk.example.com", "stanion-pc.gov.uk"),
    ("st\u0430nion-pc.gov.uk.example.com", "stanion-pc.gov.uk"),  # Cyrillic a
    ("stanion-pc.gov.uk\u200b.example.com", "stanion-pc.gov.uk"),  # zero-width space
    ("stanionpc.onmicrosoft.com", "stanion-pc.gov.uk"),  # a free Microsoft 365 tenant
    ("securestanion-pc.com", "stanion-pc.gov.uk"),  # a word glued on
    ("stanionpcclerk.com", "stanion-pc.gov.uk"),
    ("stanion-parish.org.uk", "stanion-pc.gov.uk"),  # the council named another way
    ("stanion.org.uk", None),  # the village's name alone may be its hall or its club
    ("STANION-PC.GOV.UK.", None),  # the council itself, as typed
    ("stanion-pc\u3002gov\u3002uk", None),  # ideographic dots: the council's own name again
    ("x" * 900 + ".example", None),  # not a valid name: not compared (and no time spent)
    ("a..b", None),
])
def test_lookalike_domains(domain, imitates):
    got = lookalike(domain, KNOWN_DOMAINS, FREE)
    assert got == imitates


@pytest.mark.parametrize("domain,known,imitates", [
    ("example.net", "example.org", "example.org"),  # found, but weak: see the signal tests
    ("secure-bank.example.net", "example.org", "example.org"),
    ("hotmail.com", "hotmail.co.uk", None),
    ("sky.com", "sky.co.uk", None),  # the sender is a mail provider
    ("lancashire.police.uk", "lancashire.gov.uk", None),
    ("lancashire.gov.uk", "lancashire.police.uk", None),
    ("nalc.gov.uk", "nalc.org.uk", "nalc.org.uk"),  # unless nalc.gov.uk shows it sent it
])
def test_lookalike_knows_the_world(domain, known, imitates):
    free = frozenset({"hotmail.com", "hotmail.co.uk", "sky.com"})
    assert lookalike(domain, [known], free) == imitates


def test_a_public_body_that_showed_it_sent_the_mail_imitates_nobody():
    # A neighbouring council's name may resemble ours; only a public body can hold it.
    assert lookalike("stanton-pc.gov.uk", KNOWN_DOMAINS, FREE) == "stanion-pc.gov.uk"
    assert lookalike("stanton-pc.gov.uk", KNOWN_DOMAINS, FREE, vetted=True) is None
    assert lookalike("nalc.gov.uk", ["nalc.org.uk"], FREE, vetted=True) is None
    # shown to come from a registrable domain: still judged
    assert lookalike("stanion-pc.co.uk", KNOWN_DOMAINS, FREE, vetted=True) == "stanion-pc.gov.uk"


def test_skeleton_folds_homoglyphs():
    assert skeleton("rnicrosoft") == skeleton("microsoft")
    assert skeleton("paypaI") == skeleton("paypal") == skeleton("PAYPAL")
    assert skeleton("g00gle") == skeleton("google")
    assert skeleton("ѕtаnіоn") == skeleton("stanion")  # Cyrillic letters from the UTS 39 data
    assert skeleton("𝐬𝐭𝐚𝐧𝐢𝐨𝐧") == skeleton("stanion")  # mathematical bold
    assert skeleton("stan1on") == skeleton("stanlon") == skeleton("stanion")  # i, l and 1
    assert skeleton("xn--stnion-pc-y2a") != ""
    assert skeleton("stanton") != skeleton("stanion")


def test_cyrillic_homoglyph_domain():
    assert lookalike("nаlc.gov.uk".encode("idna").decode(), KNOWN_DOMAINS, FREE) == "nalc.gov.uk"


def test_a_neighbour_one_letter_away_that_shows_it_is_genuine_is_weak():
    # Stanton beside Stanion, on a domain anyone can register: strong only without proof.
    weak = lookalike_signal([("sender's", "stanton-pc.org.uk")], KNOWN_DOMAINS, FREE,
                            BOOK.council_domains, frozenset({"stanton-pc.org.uk"}))
    assert weak is not None and weak.points < STRONG
    strong = lookalike_signal([("sender's", "stanton-pc.org.uk")], KNOWN_DOMAINS, FREE,
                              BOOK.council_domains)
    assert strong is not None and strong.points == STRONG
    # A look-alike by its look stays strong however genuine: a phisher owns stan1on-pc.co.uk.
    s = lookalike_signal([("sender's", "stan1on-pc.co.uk")], KNOWN_DOMAINS, FREE,
                         BOOK.council_domains, frozenset({"stan1on-pc.co.uk"}))
    assert s is not None and s.points == STRONG


def test_the_council_is_matched_before_a_correspondent_with_a_similar_name():
    known = {*KNOWN_DOMAINS, "littlestanion-pc.gov.uk"}
    s = lookalike_signal([("sender's", "little-stanion-pc.co.uk")], known, FREE,
                         BOOK.council_domains)
    assert s is not None and s.points == STRONG and "council's own stanion-pc.gov.uk" in s.text


def test_a_display_spoof_of_the_councils_own_domain_is_caught():
    # Ideographic dots and a zero-width space: the council's name as a reader sees it.
    for domain in ("stanion-pc\u3002gov\u3002uk", "stanion-pc.gov.uk\u200b"):
        s = own_domain_signal(["stanion-pc.gov.uk"], f"clerk@{domain}", "", auth())
        assert s is not None and s.code == "council-domain-from-outside"


def test_lookalike_of_the_council_is_strong_of_a_correspondent_weak():
    s = lookalike_signal([("sender's", "resident.example"), ("Reply-To", "stanlon-pc.gov.uk")],
                         KNOWN_DOMAINS, FREE, BOOK.council_domains)
    assert s is not None and (s.code, s.severity, s.points) == ("lookalike-domain",
                                                                Severity.HIGH, STRONG)
    assert s.text == ("Looks like phishing: the Reply-To domain stanlon-pc.gov.uk looks like "
                      "the council's own stanion-pc.gov.uk but is not it.")
    s = lookalike_signal([("sender's", "n0rthants.gov.uk")], KNOWN_DOMAINS, FREE,
                         BOOK.council_domains)
    assert s is not None and s.points < STRONG and s.severity is Severity.MEDIUM
    assert s.text == ("The sender's domain n0rthants.gov.uk looks like northants.gov.uk, a "
                      "domain the council writes to, but is not it.")
    assert lookalike_signal([("sender's", "resident.example")], KNOWN_DOMAINS, FREE) is None
    assert lookalike_signal([("sender's", "stanton-pc.gov.uk")], KNOWN_DOMAINS, FREE,
                            BOOK.council_domains, frozenset({"stanton-pc.gov.uk"})) is None


@pytest.mark.parametrize("from_addr,reply_to,flagged", [
    ("ceo@company.example", "ceo.private@gmail.com", True),
    ("pat@gmail.com", "pat@gmail.com", False),  # the sender's own address
    ("pat@gmail.com", "Pat <PAT@gmail.com>", False),
    ("ceo@company.example", "office@company.example", False),
    ("ceo@company.example", "", False),
])
def test_reply_to_diverted_to_free_mail(from_addr, reply_to, flagged):
    s = reply_to_signal(from_addr, reply_to, FREE)
    assert (s is not None) == flagged
    if s:
        assert s.text == ("Replies would go to a free-mail address (ceo.private@gmail.com), not "
                          "to the sender (ceo@company.example).")
        assert s.severity is Severity.MEDIUM


LIST_TEXT = ("Mailing-list or bulk mail from the mailing list offers.garden.example, which the "
             "council has not said it reads.")
BULK_TEXT = ("Mailing-list or bulk mail that its sender marks as sent in bulk, which the council "
             "has not said it reads.")


@pytest.mark.parametrize("headers,known_lists,expected", [
    ((("List-Id", "Garden Offers <offers.garden.example>"),), (), LIST_TEXT),
    ((("Precedence", "bulk"),), (), BULK_TEXT),
    ((("Precedence", "list"),), (), BULK_TEXT),
    ((("List-Id", "NALC news <news.nalc.gov.uk>"),), ("news.nalc.gov.uk",), None),
    ((), (), None),
    ((("Precedence", "first-class"),), (), None),
])
def test_bulk_or_list_mail(headers, known_lists, expected):
    msg = parse_message(make_mail(headers=headers))
    s = bulk_signal(msg, known_lists)
    assert (s.text if s else None) == expected
    assert s is None or s.severity is Severity.LOW


@pytest.mark.parametrize("html,flagged", [
    ('<a href="http://login.evil.example/x">https://www.barclays.co.uk</a>', True),
    ('<a href="https://evil.example">www.barclays.co.uk/login</a>', True),
    ('<a href="https://www.barclays.co.uk/login">www.barclays.co.uk</a>', False),
    ('<a href="https://online.barclays.co.uk/">barclays.co.uk</a>', False),  # same organisation
    ('<a href="https://evil.example">Click here</a>', False),  # text shows no address
    ('<a href="mailto:x@y.example">help.example.org</a>', False),
])
def test_link_text_shows_one_domain_target_another(html, flagged):
    msg = parse_message(make_mail(html=f"<p>{html}</p>"))
    s = link_signal(msg)
    assert (s is not None) == flagged
    if s:
        assert s.text.startswith('Looks like phishing: a link shows "')
        assert s.severity is Severity.HIGH


@pytest.mark.parametrize("body,codes,points", [
    ("Please forward this to ten friends or bad luck will follow.", ["chain-letter"], 5.0),
    ("Could you forward this to the county council, or pass this on to whoever deals with it?",
     [], 0.0),  # a resident asking for a message to be passed on
    ("Please forward this to everyone on the council.", ["chain-letter"], 2.5),  # half alone
    ("LIMITED   TIME offer on roofing!", ["advertising"], 2.5),
    ("Limited time offer! Act now, buy now.", ["advertising"], 7.5),
    ("The bin collection was missed again.", [], 0.0),
    ("Sales are cheaper than ever", [], 0.0),  # "cheap" as a whole word only
])
def test_chain_letter_and_advertising_phrases(body, codes, points):
    text = body_text(parse_message(make_mail(body=body)))
    signals = phrase_signals(text, DEFAULT_CHAIN, DEFAULT_ADVERT)
    assert [s.code for s in signals] == codes
    assert sum(s.points for s in signals) == points
    assert all(s.severity is Severity.LOW for s in signals)


def test_phrases_are_quoted_in_the_sentence():
    chain, advert = phrase_signals("Limited time offer! Act now and forward this to everyone.",
                                   DEFAULT_CHAIN, DEFAULT_ADVERT)
    assert chain.text == 'Reads like a chain letter: "forward this to everyone".'
    assert advert.text == 'Reads like unsolicited advertising: "limited time offer", "act now".'


def test_phrases_found_in_html_and_subject():
    msg = parse_message(make_mail(subject="You have won", body="see below",
                                  html="<p>Do <b>not</b> break this <i>chain</i></p>"))
    codes = [s.code for s in phrase_signals(body_text(msg), DEFAULT_CHAIN, DEFAULT_ADVERT)]
    assert codes == ["chain-letter", "advertising"]


def test_spamassassin_score_in_plain_english():
    s = spamd_signal(SpamdScore(True, 7.5, 5.0), threshold=5.0)
    assert s is not None and (s.code, s.points, s.severity) == ("spamassassin", 5.0,
                                                                Severity.MEDIUM)
    assert s.text == ("The spam checker (SpamAssassin) scores it 7.5 points; it counts 5 or more "
                      "as spam.")
    assert spamd_signal(SpamdScore(False, 1.0, 5.0), threshold=5.0) is None
    assert spamd_signal(None, threshold=5.0) is None


# The names of the checks behind the signals, which the clerk is not expected to know.
JARGON = re.compile(r"\b(?:SPF|DKIM|DMARC)\b|List-Id|Precedence", re.I)


def test_no_signal_names_the_checks_behind_it():
    bulk_msg = parse_message(make_mail(headers=(("List-Id", "Offers <offers.garden.example>"),)))
    signals = [
        *auth_signals(auth(spf="fail", dkim=("fail",), dmarc="fail", policy="reject")),
        *auth_signals(auth(spf="softfail")),
        forged_known_signal(BOOK, "jane@nalc.gov.uk", auth(spf="fail", domain="nalc.gov.uk")),
        blocked_signal(BOOK, "spammer@bad.example", ""),
        attachments_signal(["invoice.pdf"]),
        display_name_signal('"Chairman" <someone@gmail.com>', BOOK, DEFAULT_PROTECTED, FREE),
        lookalike_signal([("sender's", "stanlon-pc.gov.uk")], KNOWN_DOMAINS, FREE),
        reply_to_signal("ceo@company.example", "ceo.private@gmail.com", FREE),
        bulk_signal(bulk_msg, ()),
        bulk_signal(parse_message(make_mail(headers=(("Precedence", "bulk"),))), ()),
        link_signal(parse_message(make_mail(
            html='<a href="http://evil.example/">https://www.barclays.co.uk</a>'))),
        *phrase_signals("forward this to ten friends; buy now; gift cards", DEFAULT_CHAIN,
                        DEFAULT_ADVERT, DEFAULT_FRAUD),
        spamd_signal(SpamdScore(True, 7.5, 5.0), threshold=5.0),
        own_domain_signal(("stanion-pc.gov.uk",), "clerk@stanion-pc.gov.uk", "", auth()),
    ]
    assert all(s is not None for s in signals)
    # Every kind of signal the junk filter reports (all its codes but the conclusion "junk").
    assert {s.code for s in signals if s} == {k.code for k in KINDS} - {"junk"}
    for s in signals:
        assert s is not None and not JARGON.search(s.text), s.text


@pytest.mark.parametrize("data,expected", [
    (b"From: a\r\nSubject: Hello\r\n\r\nbody", b"From: a\r\nSubject: [J] Hello\r\n\r\nbody"),
    (b"Subject: Hello\r\n there\r\nX: y\r\n\r\nb",
     b"Subject: [J] Hello\r\n there\r\nX: y\r\n\r\nb"),
    (b"From: a\r\n\r\nbody", b"Subject: [J]\r\nFrom: a\r\n\r\nbody"),
    (b"Subject: [J] Hello\r\n\r\nb", b"Subject: [J] Hello\r\n\r\nb"),
])
def test_tag_subject(data, expected):
    assert tag_subject(data, "[J]") == expected


@pytest.mark.parametrize("body,points", [
    ("Could you buy six Amazon gift cards and send me photos of the codes?", 5.0),
    ("We have changed our bank: please pay to our new account, new sort code 20-11-17.", 7.5),
    ("I am in a meeting, keep this between us and make a wire transfer.", 7.5),
    ("Please update your records with our new address.", 2.5),  # one phrase: not alone
    ("Please find our invoice attached, payable within 30 days.", 0.0),
    ("Thank you, payment received.", 0.0),
])
def test_payment_fraud_phrases(body, points):
    text = body_text(parse_message(make_mail(body=body)))
    signals = phrase_signals(text, (), (), DEFAULT_FRAUD)
    assert sum(s.points for s in signals) == points
    assert all((s.code, s.severity) == ("payment-fraud", Severity.HIGH) for s in signals)
    assert all(s.text.startswith("Reads like a request for money or gift cards") for s in signals)


def test_a_public_body_may_sign_with_its_titles():
    header = '"Clerk to Brigstock Parish Council" <clerk@brigstock-pc.gov.uk>'
    titles = frozenset(t.casefold() for t in DEFAULT_PROTECTED)
    assert display_name_signal(header, BOOK, DEFAULT_PROTECTED, FREE) is not None
    assert display_name_signal(header, BOOK, DEFAULT_PROTECTED, FREE, allowed=titles) is None
    # but not the names the council protects, nor a known person's name
    protected = (*DEFAULT_PROTECTED, "Margaret Hale")
    assert display_name_signal('"Margaret Hale" <m.hale@brigstock-pc.gov.uk>', BOOK, protected,
                               FREE, allowed=titles) is not None
    assert display_name_signal("Jane Smith <jane.smith@brigstock-pc.gov.uk>", BOOK,
                               DEFAULT_PROTECTED, FREE, allowed=titles) is not None


def test_public_bodies_are_those_whose_addresses_only_staff_hold():
    assert in_public_body_registry("brigstock-pc.gov.uk")
    assert in_public_body_registry("northants.police.uk")
    assert not in_public_body_registry("student.le.ac.uk")  # students have addresses there
    assert not in_public_body_registry("stanion-primary.northants.sch.uk")  # and pupils
    assert not in_public_body_registry("stanion-pc.org.uk")


def test_a_list_the_council_reads():
    msg = parse_message(make_mail(headers=(("List-Id", "NALC weekly <weekly.lists.nalc.gov.uk>"),
                                           ("Precedence", "bulk"))))
    assert reads_list(msg, ["weekly.lists.nalc.gov.uk"])
    assert bulk_signal(msg, ["<weekly.lists.nalc.gov.uk>"]) is None
    assert not reads_list(msg, ["other.example"])
    assert bulk_signal(msg, ["other.example"]) is not None
    assert not reads_list(parse_message(make_mail()), ["weekly.lists.nalc.gov.uk"])
    # anyone can write a List-Id: with the sender's domain, only that domain's own list counts
    assert reads_list(msg, ["weekly.lists.nalc.gov.uk"], "lists.nalc.gov.uk")
    assert not reads_list(msg, ["weekly.lists.nalc.gov.uk"], "gmail.com")


def test_a_lookalike_written_in_other_letters_says_which():
    # On the clerk's screen a Cyrillic "і" is an "i": the reason says what makes it different.
    s = lookalike_signal([("sender's", "stan\u0456on-pc.gov.uk")], KNOWN_DOMAINS, FREE,
                         BOOK.council_domains)
    assert s is not None and s.points == STRONG
    assert s.text.endswith('but is not it. Its "\u0456" (U+0456) is a Cyrillic character.')
    s = lookalike_signal([("sender's", "n\u03b1lc.gov.uk")], KNOWN_DOMAINS, FREE)
    assert s is not None and s.text.endswith('Its "\u03b1" (U+03B1) is a Greek character.')
    s = lookalike_signal([("sender's", "st\u00e4nion-pc.gov.uk")], KNOWN_DOMAINS, FREE,
                         BOOK.council_domains)
    assert s is not None and s.text.endswith(
        'Its "\u00e4" (U+00E4) is a Latin letter not used in English.')
    # A mark shows as nothing on its own: only its code is given.
    s = lookalike_signal([("sender's", "stanion\u0336-pc.gov.uk")], KNOWN_DOMAINS, FREE,
                         BOOK.council_domains)
    assert s is not None and s.text.endswith("Its U+0336 is a mark added to the letter before it.")
