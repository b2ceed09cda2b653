"""Sessions, the login form's token, the login limit, client addresses, the [review] section and
the digest's links to the page."""

from __future__ import annotations

import ipaddress
from datetime import datetime, timezone

import pytest

from gateway.assembly import KINDS, parse_config
from gateway.config import ConfigError
from gateway.policy import Policy
from gateway.quarantine.digest import Week, build_digest
from gateway.quarantine.explain import explain
from gateway.quarantine.store import HeldMessage
from gateway.review.auth import LoginForms, LoginLimiter, Sessions, client_address
from gateway.review.downloads import downloads_allowed
from gateway.review.settings import ReviewConfig, review_config, review_warnings
from gateway.verdicts import Finding, Severity

POLICY = Policy(KINDS)

BASE = '[gateway]\ncouncil_domains = ["stanion-pc.gov.uk"]\n'


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_session_lives_while_used_and_ends_when_idle():
    clock = Clock()
    sessions = Sessions(idle_seconds=600, clock=clock)
    token, session = sessions.new()
    for _ in range(5):  # used every 9 minutes: stays alive well past 10 minutes
        clock.now += 540
        assert sessions.get(token) is session
    clock.now += 601
    assert sessions.get(token) is None
    assert sessions.get(token) is None  # and stays gone


def test_unknown_and_ended_tokens_have_no_session():
    sessions = Sessions(idle_seconds=600)
    token, _ = sessions.new()
    assert sessions.get("made-up") is None and sessions.get("") is None
    sessions.end(token)
    assert sessions.get(token) is None


def test_csrf_tokens_differ_per_session_and_are_checked_exactly():
    sessions = Sessions(idle_seconds=600)
    _, a = sessions.new()
    _, b = sessions.new()
    assert a.csrf != b.csrf
    assert a.check_csrf(a.csrf)
    for wrong in (b.csrf, "", None, a.csrf[:-1], a.csrf + "x"):
        assert not a.check_csrf(wrong)


def test_the_table_of_sessions_has_a_limit():
    sessions = Sessions(idle_seconds=600, limit=10)
    tokens = [sessions.new()[0] for _ in range(25)]
    assert sum(sessions.get(t) is not None for t in tokens) == 10
    assert sessions.get(tokens[-1]) is not None


def test_login_limit_per_address_and_window():
    clock = Clock()
    limiter = LoginLimiter(attempts=3, window=900, clock=clock)
    for _ in range(3):
        assert limiter.wait_seconds("192.0.2.1") == 0
        assert limiter.begin("192.0.2.1") is not None  # and never succeeds: a failure
    assert limiter.wait_seconds("192.0.2.1") == 900
    assert limiter.wait_seconds("192.0.2.2") == 0  # another address is not affected
    clock.now += 600
    assert limiter.wait_seconds("192.0.2.1") == 300
    clock.now += 300
    assert limiter.wait_seconds("192.0.2.1") == 0


def test_a_good_login_clears_the_count():
    limiter = LoginLimiter(attempts=3)
    limiter.begin("a")
    limiter.begin("a")
    attempt = limiter.begin("a")
    assert attempt is not None
    attempt.succeeded()
    limiter.begin("a")
    limiter.begin("a")
    assert limiter.wait_seconds("a") == 0


def test_a_slot_is_taken_before_the_password_is_checked():
    clock = Clock()
    limiter = LoginLimiter(attempts=3, window=900, clock=clock)
    checking = [limiter.begin("192.0.2.1") for _ in range(3)]  # none has finished yet
    assert all(a is not None for a in checking)
    assert limiter.begin("192.0.2.1") is None
    assert limiter.wait_seconds("192.0.2.1") == 900
    clock.now += 900
    assert limiter.begin("192.0.2.1") is not None


def test_the_account_has_its_own_limit_across_addresses():
    clock = Clock()
    limiter = LoginLimiter(attempts=3, account_attempts=5, window=900, clock=clock)
    for n in range(5):
        assert limiter.begin(f"192.0.2.{n}") is not None
    assert limiter.begin("198.51.100.1") is None  # a new address, but the account is full
    assert limiter.wait_seconds("198.51.100.1") == 900
    clock.now += 300
    assert limiter.wait_seconds("198.51.100.1") == 600
    clock.now += 600
    assert limiter.begin("198.51.100.1") is not None


def test_a_right_password_does_not_count_against_the_account():
    limiter = LoginLimiter(attempts=3, account_attempts=2)
    for n in range(10):
        attempt = limiter.begin(f"192.0.2.{n}")
        assert attempt is not None
        attempt.succeeded()
    assert limiter.wait_seconds("198.51.100.1") == 0


def test_a_session_belongs_to_the_password_it_was_opened_with():
    sessions = Sessions(idle_seconds=600)
    _, session = sessions.new(password_hash="$argon2id$v=19$one")
    assert session.opened_with("$argon2id$v=19$one")
    assert not session.opened_with("$argon2id$v=19$two")
    assert not session.opened_with(None)  # the password file was removed


def test_the_login_form_token_belongs_to_its_cookie_and_expires():
    clock = Clock()
    forms = LoginForms(max_age=600, clock=clock)
    nonce, token = forms.new()
    other, other_token = forms.new()
    assert forms.check(nonce, token)
    assert forms.check(nonce, forms.token_for(nonce))
    for wrong_nonce, wrong_token in ((other, token), (nonce, other_token), (nonce, ""),
                                     (None, token), ("", token), (nonce, token + "0"),
                                     (nonce, "1000." + token.partition(".")[2][:-1] + "x"),
                                     (nonce, "not-a-token")):
        assert not forms.check(wrong_nonce, wrong_token)
    clock.now += 600
    assert forms.check(nonce, token)
    clock.now += 1
    assert not forms.check(nonce, token)
    assert not LoginForms(max_age=600, clock=clock).check(nonce, forms.token_for(nonce))


def test_a_changed_time_in_the_login_token_is_refused():
    clock = Clock()
    forms = LoginForms(max_age=600, clock=clock)
    nonce, token = forms.new()
    clock.now += 601
    _, mac = token.split(".")
    assert not forms.check(nonce, f"{int(clock.now)}.{mac}")


PROXIES = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("10.0.0.0/8"),
           ipaddress.ip_network("::1/128"))


@pytest.mark.parametrize("peer,forwarded,trusted,client", [
    # nobody trusted: the header is never read
    ("127.0.0.1", ["203.0.113.5"], (), "127.0.0.1"),
    ("192.0.2.9", ["203.0.113.5"], PROXIES, "192.0.2.9"),  # the peer is no proxy of ours
    ("127.0.0.1", [], PROXIES, "127.0.0.1"),
    ("127.0.0.1", ["203.0.113.5"], PROXIES, "203.0.113.5"),
    # the right-most untrusted hop: what the client wrote on the left does not count
    ("127.0.0.1", ["198.51.100.1, 203.0.113.5"], PROXIES, "203.0.113.5"),
    ("127.0.0.1", ["198.51.100.1, 203.0.113.5, 10.1.2.3"], PROXIES, "203.0.113.5"),
    ("127.0.0.1", ["198.51.100.1", "203.0.113.5"], PROXIES, "203.0.113.5"),  # two headers
    ("127.0.0.1", ["10.1.2.3, 10.4.5.6"], PROXIES, "10.1.2.3"),  # every hop ours
    # an entry that is not an address: the last hop we trust is all that is known
    ("127.0.0.1", ["203.0.113.5, unknown"], PROXIES, "127.0.0.1"),
    ("127.0.0.1", ["203.0.113.5, garbage, 10.1.2.3"], PROXIES, "10.1.2.3"),
    ("127.0.0.1", [" , "], PROXIES, "127.0.0.1"),
    # spellings of addresses
    ("::1", ["2001:db8::7"], PROXIES, "2001:db8::7"),
    ("::ffff:127.0.0.1", ["203.0.113.5"], PROXIES, "203.0.113.5"),
    ("127.0.0.1", ["[2001:db8::7]:4431"], PROXIES, "2001:db8::7"),
    ("127.0.0.1", ["203.0.113.5:4431"], PROXIES, "203.0.113.5"),
    ("127.0.0.1", ["::ffff:203.0.113.5"], PROXIES, "203.0.113.5"),
    ("unknown", ["203.0.113.5"], PROXIES, "unknown"),
])
def test_the_client_address_behind_trusted_proxies(peer, forwarded, trusted, client):
    assert client_address(peer, forwarded, trusted) == client


def test_review_section_defaults():
    cfg = review_config(parse_config(BASE))
    assert cfg == ReviewConfig()
    assert cfg.listen == ("127.0.0.1", 8025) and not cfg.enabled and not cfg.allow_downloads
    assert cfg.secure_cookies is True and cfg.trusted_proxies == ()


def test_trusted_proxies_are_networks():
    cfg = review_config(parse_config(BASE + '[review]\ntrusted_proxies = ["127.0.0.1", '
                                            '"172.17.0.0/16", "::1"]\n'))
    assert cfg.trusted_proxies == (ipaddress.ip_network("127.0.0.1/32"),
                                   ipaddress.ip_network("172.17.0.0/16"),
                                   ipaddress.ip_network("::1/128"))


@pytest.mark.parametrize("review,warned", [
    ({}, True),  # the defaults: secure cookies, loopback, no public_url
    ({"public_url": "http://gateway.local"}, True),
    ({"listen": ("::1", 8025)}, True),
    ({"listen": ("localhost", 8025)}, True),
    ({"public_url": "https://mail.stanion-pc.gov.uk/review"}, False),
    ({"secure_cookies": False}, False),
    ({"listen": ("0.0.0.0", 8025)}, False),  # in a container, behind the host's proxy
])
def test_secure_cookies_over_plain_http_on_loopback_are_explained(review, warned):
    warnings = review_warnings(ReviewConfig(**review))
    assert bool(warnings) is warned
    for text in warnings:
        assert text.startswith("review.secure_cookies: ")
        assert "will not send the login cookie over plain http" in text
        assert "set secure_cookies = false" in text


@pytest.mark.parametrize("text,expected", [
    ('public_url = "mail.example"',
     'review.public_url (line 4): "mail.example" is not a web address'),
    ("session_minutes = 0", "review.session_minutes (line 4): 0 is too small"),
    ('trusted_proxies = ["the proxy"]',
     'review.trusted_proxies[0] (line 4): "the proxy" is not a network'),
    ('listen = "8025"', 'review.listen (line 4): "8025" is not host:port'),
    ("enabeld = true", 'review.enabeld (line 4): is not a setting the gateway knows; did you '
                       'mean "enabled"?'),
])
def test_review_section_problems_are_explained(text, expected):
    with pytest.raises(ConfigError) as err:
        parse_config(BASE + "[review]\n" + text + "\n")
    assert any(str(p).startswith(expected) for p in err.value.problems), err.value.problems


def _held(reasons: tuple[str, ...], *findings: Finding) -> HeldMessage:
    return HeldMessage(id="1700000000.M1P1Q1.gw", received_at=datetime.now(timezone.utc),
                       direction="inbound", mail_from="pat@resident.example",
                       rcpt_tos=("clerk@stanion-pc.gov.uk",), reasons=reasons,
                       client_address="127.0.0.1", auth_user="", subject="Minutes",
                       from_header="pat@resident.example", size=100, findings=findings)


@pytest.mark.parametrize("code,severity,allowed", [
    ("reply-to-free-mail", Severity.MEDIUM, True),
    ("attachment-unknown-sender", Severity.MEDIUM, True),
    ("virus", Severity.HIGH, False),
    ("attachment.blocked-type", Severity.HIGH, False),
    ("attachment.macro", Severity.HIGH, False),
    ("unscannable.limits", Severity.MEDIUM, False),
    ("lookalike-domain", Severity.HIGH, False),
])
def test_downloads_never_for_mail_held_as_dangerous(code, severity, allowed):
    why = explain(POLICY, _held(("held",), Finding("x", code, severity, "held")))
    assert downloads_allowed(ReviewConfig(allow_downloads=True), why) is allowed
    assert downloads_allowed(ReviewConfig(), why) is False


def test_the_digest_links_each_message_to_its_page():
    config = parse_config(BASE + '[quarantine]\ndigest_to = ["clerk@stanion-pc.gov.uk"]\n'
                          '[review]\npublic_url = "https://mail.stanion-pc.gov.uk/review/"\n')
    body = build_digest(config, POLICY, [_held(("Held for a test",))], Week()).get_content()
    assert ("Review:  https://mail.stanion-pc.gov.uk/review/message/1700000000.M1P1Q1.gw"
            in body)
    assert "Review them in your browser: https://mail.stanion-pc.gov.uk/review/" in body


def test_no_links_without_a_public_url():
    config = parse_config(BASE + '[quarantine]\ndigest_to = ["clerk@stanion-pc.gov.uk"]\n')
    body = build_digest(config, POLICY, [_held(("Held for a test",))], Week()).get_content()
    assert "Review:" not in body and "http" not in body
