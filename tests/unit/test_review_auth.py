"""Sessions, the login limit, the [review] section and the digest's links to the page."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from gateway.assembly import KINDS, parse_config
from gateway.config import ConfigError
from gateway.policy import Policy
from gateway.quarantine.digest import Week, build_digest
from gateway.quarantine.explain import explain
from gateway.quarantine.store import HeldMessage
from gateway.review.auth import LoginLimiter, Sessions
from gateway.review.downloads import downloads_allowed
from gateway.review.settings import ReviewConfig, review_config
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
    token, session = sessions.new(logged_in=True)
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


def test_anonymous_visits_cannot_grow_the_table_without_limit():
    sessions = Sessions(idle_seconds=600, limit=10)
    tokens = [sessions.new()[0] for _ in range(25)]
    assert sum(sessions.get(t) is not None for t in tokens) == 10
    assert sessions.get(tokens[-1]) is not None


def test_login_limit_per_address_and_window():
    clock = Clock()
    limiter = LoginLimiter(attempts=3, window=900, clock=clock)
    for _ in range(3):
        assert limiter.wait_seconds("192.0.2.1") == 0
        limiter.failed("192.0.2.1")
    assert limiter.wait_seconds("192.0.2.1") == 900
    assert limiter.wait_seconds("192.0.2.2") == 0  # another address is not affected
    clock.now += 600
    assert limiter.wait_seconds("192.0.2.1") == 300
    clock.now += 300
    assert limiter.wait_seconds("192.0.2.1") == 0


def test_a_good_login_clears_the_count():
    limiter = LoginLimiter(attempts=3)
    limiter.failed("a")
    limiter.failed("a")
    limiter.succeeded("a")
    limiter.failed("a")
    limiter.failed("a")
    assert limiter.wait_seconds("a") == 0


def test_review_section_defaults():
    cfg = review_config(parse_config(BASE))
    assert cfg == ReviewConfig()
    assert cfg.listen == ("127.0.0.1", 8025) and not cfg.enabled and not cfg.allow_downloads


@pytest.mark.parametrize("text,expected", [
    ('public_url = "mail.example"',
     'review.public_url (line 4): "mail.example" is not a web address'),
    ("session_minutes = 0", "review.session_minutes (line 4): 0 is too small"),
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
