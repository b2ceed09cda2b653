"""The clerk's review page over real HTTP: uvicorn on loopback, httpx as the client.

Kirkham rule 15 and Stanion "Email": held mail is reviewed without being opened; every decision is
the clerk's, confirmed, recorded in the audit log, and made through the one resolve function.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from gateway.assembly import load_config
from gateway.quarantine.store import QuarantineStore
from gateway.review import app as review_app
from gateway.review.auth import verify_password
from gateway.review.render import CSP
from gateway.review.serve import running_review
from gateway.verdicts import Finding, Severity
from tests.conftest import build_config, write_config
from tests.mailmaker import make_mail
from tests.reviewkit import PASSWORD, csrf_of, hold, log_in, review_overrides, set_password

ROOT = Path(__file__).resolve().parents[2]
PDF = ("minutes.pdf", "application/pdf", b"%PDF-1.4\n%harmless\n")


def config_for(tmp_path: Path, sink_url: str | None = None, **review):
    over = review_overrides(tmp_path, **review)
    if sink_url:
        over["inbound"] = {"deliver_to": sink_url}
    set_password(tmp_path)
    return build_config(tmp_path, over)


@pytest.fixture
async def page(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Path]]:
    config = config_for(tmp_path)
    async with running_review(config, "127.0.0.1", 0) as server:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}",
                                     follow_redirects=False) as client:
            yield client, tmp_path


def audit(tmp_path: Path) -> list[dict]:
    path = tmp_path / "logs" / "audit.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


async def test_nothing_is_readable_without_logging_in(page):
    client, tmp_path = page
    qid = hold(tmp_path / "quarantine", make_mail(subject="Private matter"))
    for path in ("/", f"/message/{qid}", f"/confirm?action=delete&id={qid}",
                 f"/message/{qid}/attachment/0", "/?q=Private"):
        r = await client.get(path)
        assert r.status_code == 303, path
        assert r.headers["location"].startswith("/login"), path
        assert "Private" not in r.text
    r = await client.post("/act", data={"action": "delete", "id": qid, "csrf": "x"})
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert QuarantineStore(tmp_path / "quarantine").get(qid).subject == "Private matter"
    login = await client.get("/login")
    assert login.status_code == 200 and "Private" not in login.text
    css = await client.get("/static/review.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


async def test_login_sets_a_strict_http_only_cookie_and_then_lists(page):
    client, tmp_path = page
    hold(tmp_path / "quarantine", make_mail(subject="Pothole"))
    r = await log_in(client)
    assert r.status_code == 303 and r.headers["location"] == "/"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("council-review=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie
    r = await client.get("/")
    assert r.status_code == 200 and "Pothole" in r.text
    assert r.headers["content-security-policy"] == CSP
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["x-frame-options"] == "DENY"


async def test_the_login_rotates_the_session_token(page):
    client, _ = page
    await client.get("/login")
    before = client.cookies["council-review"]
    await log_in(client)
    assert client.cookies["council-review"] != before


async def test_secure_cookies_are_marked_secure_with_the_host_prefix(tmp_path):
    config = config_for(tmp_path, secure_cookies=True)
    async with running_review(config, "127.0.0.1", 0) as server:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
            r = await client.get("/login")
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("__Host-council-review=")
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie


async def test_a_login_without_the_cookie_says_why(tmp_path):
    config = config_for(tmp_path, secure_cookies=True)
    async with running_review(config, "127.0.0.1", 0) as server:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
            form = await client.get("/login")  # httpx keeps a Secure cookie off plain http
            r = await client.post("/login", data={"csrf": csrf_of(form.text),
                                                  "password": PASSWORD, "next": "/"})
            assert r.status_code == 403
            assert "did not send back this page" in r.text
            assert "secure_cookies" in r.text and 'name="password"' in r.text
            assert (await client.get("/")).status_code == 303


async def test_wrong_password_is_refused_and_attempts_are_limited(page):
    client, _ = page
    for _ in range(5):
        r = await log_in(client, "not the password")
        assert r.status_code == 401
        assert "That password is not right" in r.text
    r = await log_in(client)  # even the right one, once the limit is reached
    assert r.status_code == 429
    assert "Too many wrong passwords" in r.text
    assert (await client.get("/")).status_code == 303


async def test_login_form_without_its_token_is_refused(page):
    client, _ = page
    await client.get("/login")
    r = await client.post("/login", data={"password": PASSWORD})
    assert r.status_code == 403
    assert (await client.get("/")).status_code == 303


async def test_login_goes_back_to_the_page_asked_for_but_never_off_site(page):
    client, tmp_path = page
    qid = hold(tmp_path / "quarantine", make_mail())
    r = await client.get(f"/message/{qid}")
    assert r.headers["location"] == f"/login?next=%2Fmessage%2F{qid}"
    form = await client.get(r.headers["location"])
    r = await client.post("/login", data={"csrf": csrf_of(form.text), "password": PASSWORD,
                                          "next": f"/message/{qid}"})
    assert r.headers["location"] == f"/message/{qid}"
    await client.post("/logout", data={"csrf": csrf_of((await client.get("/")).text)})
    form = await client.get("/login")
    r = await client.post("/login", data={"csrf": csrf_of(form.text), "password": PASSWORD,
                                          "next": "//evil.example/"})
    assert r.headers["location"] == "/"


async def test_logout_ends_the_session(page):
    client, _ = page
    await log_in(client)
    token = client.cookies["council-review"]
    r = await client.post("/logout", data={"csrf": csrf_of((await client.get("/")).text)})
    assert r.status_code == 303 and r.headers["location"] == "/login"
    client.cookies.set("council-review", token)  # the old cookie is worthless now
    assert (await client.get("/")).status_code == 303


async def test_an_idle_session_expires(tmp_path):
    config = config_for(tmp_path)
    async with running_review(config, "127.0.0.1", 0) as server:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
            await log_in(client)
            assert (await client.get("/")).status_code == 200
            # Move the page's clock past the idle limit (30 minutes by default).
            sessions = server.config.app.state.review.sessions
            real = sessions.clock
            sessions.clock = lambda: real() + 31 * 60
            r = await client.get("/")
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


async def test_action_without_or_with_a_wrong_token_changes_nothing(page):
    client, tmp_path = page
    qid = hold(tmp_path / "quarantine", make_mail(subject="Keep me"))
    await log_in(client)
    for data in ({"action": "delete", "id": qid},
                 {"action": "delete", "id": qid, "csrf": "forged-token"}):
        r = await client.post("/act", data=data)
        assert r.status_code == 403
        assert "nothing was changed" in r.text
    assert QuarantineStore(tmp_path / "quarantine").get(qid).subject == "Keep me"
    assert audit(tmp_path) == []


async def test_a_token_from_another_session_is_refused(page):
    client, tmp_path = page
    qid = hold(tmp_path / "quarantine", make_mail(subject="Keep me"))
    await client.get("/login")
    other_token = csrf_of((await client.get("/login")).text)  # an anonymous session's token
    await log_in(client)
    r = await client.post("/act", data={"action": "delete", "id": qid, "csrf": other_token})
    assert r.status_code == 403
    assert QuarantineStore(tmp_path / "quarantine").get(qid).subject == "Keep me"


async def test_delete_asks_first_then_deletes_and_audits(page):
    client, tmp_path = page
    qid = hold(tmp_path / "quarantine", make_mail(subject="Cheap watches"))
    await log_in(client)
    confirm = await client.get(f"/confirm?action=delete&id={qid}")
    assert confirm.status_code == 200
    assert "Delete this message?" in confirm.text and "Cheap watches" in confirm.text
    assert QuarantineStore(tmp_path / "quarantine").list() != []  # asking changes nothing
    r = await client.post("/act", data={"action": "delete", "id": qid,
                                        "csrf": csrf_of(confirm.text)})
    assert r.status_code == 303 and r.headers["location"] == "/"
    listing = await client.get("/")
    assert 'role="status"' in listing.text and "Deleted" in listing.text
    assert QuarantineStore(tmp_path / "quarantine").list() == []
    [record] = audit(tmp_path)
    assert record["event"] == "quarantine-delete" and record["quarantine_id"] == qid
    assert record["actor"] == "clerk (web) from 127.0.0.1" and record["ok"] is True


async def test_bulk_delete_of_the_ticked_messages(page):
    client, tmp_path = page
    q = tmp_path / "quarantine"
    ids = [hold(q, make_mail(subject=f"Offer {n}"), minutes_ago=n) for n in range(3)]
    await log_in(client)
    confirm = await client.get("/confirm", params=[("action", "delete"), ("id", ids[0]),
                                                   ("id", ids[2])])
    assert "Delete these 2 messages?" in confirm.text
    r = await client.post("/act", data={"action": "delete", "id": [ids[0], ids[2]],
                                        "csrf": csrf_of(confirm.text)})
    assert r.status_code == 303
    assert [h.id for h in QuarantineStore(q).list()] == [ids[1]]
    assert "Deleted 2 messages." in (await client.get("/")).text


async def test_only_delete_may_be_done_to_several_at_once(page):
    client, tmp_path = page
    q = tmp_path / "quarantine"
    ids = [hold(q, make_mail(subject=f"Offer {n}")) for n in range(2)]
    await log_in(client)
    token = csrf_of((await client.get("/")).text)
    r = await client.post("/act", data={"action": "release", "id": ids, "csrf": token})
    assert r.status_code == 403
    assert len(QuarantineStore(q).list()) == 2


async def test_release_delivers_to_the_sink(tmp_path, smtp_sink):
    config = config_for(tmp_path, smtp_sink.url)
    qid = hold(tmp_path / "quarantine", make_mail(subject="Hall booking"),
               mail_from="pat@resident.example")
    async with running_review(config, "127.0.0.1", 0) as server:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}",
                                     follow_redirects=True) as client:
            await log_in(client)
            confirm = await client.get(f"/confirm?action=release&id={qid}")
            r = await client.post("/act", data={"action": "release", "id": qid,
                                                "csrf": csrf_of(confirm.text)})
            assert "Released: delivered to clerk@stanion-pc.gov.uk." in r.text
    [msg] = await smtp_sink.wait_for(1)
    assert msg.mail_from == "pat@resident.example"
    assert b"Subject: Hall booking" in msg.data
    assert QuarantineStore(tmp_path / "quarantine").list() == []


async def test_a_refused_release_keeps_the_message_and_says_why(tmp_path, smtp_sink):
    smtp_sink.refuse_rcpt.add("clerk@stanion-pc.gov.uk")
    config = config_for(tmp_path, smtp_sink.url)
    qid = hold(tmp_path / "quarantine", make_mail(subject="Hall booking"))
    async with running_review(config, "127.0.0.1", 0) as server:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}",
                                     follow_redirects=True) as client:
            await log_in(client)
            confirm = await client.get(f"/confirm?action=release&id={qid}")
            r = await client.post("/act", data={"action": "release", "id": qid,
                                                "csrf": csrf_of(confirm.text)})
    assert "Not released" in r.text and "still in the quarantine" in r.text
    assert 'class="flash error"' in r.text
    assert QuarantineStore(tmp_path / "quarantine").get(qid).subject == "Hall booking"


async def test_newest_first_paged_and_searchable(tmp_path):
    config = config_for(tmp_path, page_size=5)
    q = tmp_path / "quarantine"
    for n in range(7):  # "Notice 0" is the newest
        hold(q, make_mail(subject=f"Notice {n}", from_=f"sender{n}@example.org"),
             minutes_ago=n)
    async with running_review(config, "127.0.0.1", 0) as server:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}",
                                     follow_redirects=True) as client:
            await log_in(client)
            first = (await client.get("/")).text
            second = (await client.get("/?page=2")).text
            found = (await client.get("/", params={"q": "SENDER5@example"})).text
    assert first.index("Notice 0") < first.index("Notice 1") < first.index("Notice 4")
    assert "Notice 5" not in first and "Page 1 of 2" in first
    assert "Notice 5" in second and "Notice 6" in second and "Notice 0" not in second
    assert "Notice 5" in found and "Notice 4" not in found
    assert "1 message match" in found


async def test_the_message_page_shows_text_headers_and_attachments(page):
    client, tmp_path = page
    qid = hold(tmp_path / "quarantine",
               make_mail(subject="Minutes", body="Here are the minutes.\n",
                         attachments=(PDF,)),
               reasons=("Has 1 attachment (minutes.pdf) from a sender the council does not know",))
    await log_in(client)
    r = await client.get(f"/message/{qid}")
    assert r.status_code == 200
    assert "Here are the minutes." in r.text
    assert "minutes.pdf" in r.text and "application/pdf" in r.text
    assert "Has 1 attachment (minutes.pdf)" in r.text
    assert f"/message/{qid}/attachment/0" not in r.text  # downloads are off by default
    assert (await client.get(f"/message/{qid}/attachment/0")).status_code == 403


async def test_downloads_only_when_allowed_and_never_for_dangerous_mail(tmp_path):
    config = config_for(tmp_path, allow_downloads=True)
    q = tmp_path / "quarantine"
    plain = hold(q, make_mail(attachments=(PDF,)),
                 reasons=("Replies would go to a free-mail address (x@gmail.com)",))
    virus = hold(q, make_mail(attachments=(PDF,)), held_by="antivirus",
                 reasons=("virus Eicar-Signature in the attachment minutes.pdf",),
                 findings=(Finding("antivirus", "virus", Severity.HIGH,
                                   "virus Eicar-Signature in the attachment minutes.pdf"),))
    async with running_review(config, "127.0.0.1", 0) as server:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}",
                                     follow_redirects=True) as client:
            await log_in(client)
            ok = await client.get(f"/message/{plain}/attachment/0")
            refused = await client.get(f"/message/{virus}/attachment/0")
            missing = await client.get(f"/message/{plain}/attachment/5")
            shown = (await client.get(f"/message/{virus}")).text
    assert ok.status_code == 200 and ok.content == PDF[2]
    assert ok.headers["content-type"] == "application/octet-stream"
    assert ok.headers["content-disposition"].startswith('attachment; filename="minutes.pdf"')
    assert refused.status_code == 403 and missing.status_code == 404
    assert f"/message/{virus}/attachment/0" not in shown
    # No button that cannot work, and the page says why.
    assert 'value="release"' not in shown and 'value="release_and_trust"' not in shown
    assert "It contains a virus, so it can never be released. Delete it." in shown
    assert ">Danger<" in shown


async def test_a_message_already_dealt_with_is_explained(page):
    client, _ = page
    await log_in(client)
    r = await client.get("/message/1700000000.M1P1Q1.gone")
    assert r.status_code == 404 and "no longer held" in r.text
    r = await client.get("/message/..%2F..%2Fetc%2Fpasswd")
    assert r.status_code == 404


def test_password_hash_round_trip(tmp_path):
    set_password(tmp_path, "a long passphrase")
    stored = (tmp_path / "review-password").read_text().strip()
    assert stored.startswith("$argon2id$")
    assert verify_password(stored, "a long passphrase")
    assert not verify_password(stored, "A long passphrase")
    assert (tmp_path / "review-password").stat().st_mode & 0o777 == 0o600


async def test_served_under_a_path_behind_a_proxy(tmp_path):
    # The proxy forwards https://mail.example/review/... to the page with the prefix removed.
    config = config_for(tmp_path, public_url="https://mail.example/review")
    async with running_review(config, "127.0.0.1", 0) as server:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
            r = await client.get("/message/abc")
            assert r.headers["location"] == "/review/login?next=%2Fmessage%2Fabc"
            form = await client.get("/login")
            assert 'href="/review/static/review.css"' in form.text
            assert 'action="/review/login"' in form.text
            r = await client.post("/login", data={"csrf": csrf_of(form.text),
                                                  "password": PASSWORD, "next": "/message/abc"})
            assert r.headers["location"] == "/review/message/abc"


# ------------------------------------------------------------------ guarding the login

@pytest.fixture
def password_checks(monkeypatch) -> list[str]:
    """Every password the page runs through argon2, in the order it did."""
    checked: list[str] = []
    real = review_app.verify_password

    def counting(stored: str, password: str) -> bool:
        checked.append(password)  # list.append is safe from the worker threads
        return real(stored, password)

    monkeypatch.setattr(review_app, "verify_password", counting)
    return checked


def wrong(n: int) -> dict[str, str]:
    return {"password": f"guess number {n}", "next": "/"}


async def test_concurrent_wrong_passwords_beyond_the_limit_are_refused_unchecked(
        tmp_path, password_checks):
    config = config_for(tmp_path)
    async with running_review(config, "127.0.0.1", 0) as server:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}",
                                     timeout=60) as client:
            token = csrf_of((await client.get("/login")).text)
            posts = await asyncio.gather(*(
                client.post("/login", data={"csrf": token, **wrong(n)}) for n in range(60)))
    codes = Counter(r.status_code for r in posts)
    assert len(password_checks) == 5, codes
    assert codes == {401: 5, 429: 55}
    assert all("Too many wrong passwords. Please wait 15 minutes" in r.text
               for r in posts if r.status_code == 429)


async def test_concurrent_wrong_passwords_from_many_addresses_meet_the_account_limit(
        tmp_path, password_checks):
    config = config_for(tmp_path)
    async with running_review(config, "127.0.0.1", 0) as server, \
            contextlib.AsyncExitStack() as stack:
        # Sixty clients, each from its own loopback address: one try each.
        clients = [await stack.enter_async_context(httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{server.port}", timeout=60,
            transport=httpx.AsyncHTTPTransport(local_address=f"127.0.0.{10 + n}")))
            for n in range(60)]
        tokens = [csrf_of((await c.get("/login")).text) for c in clients]
        posts = await asyncio.gather(*(
            c.post("/login", data={"csrf": t, **wrong(n)})
            for n, (c, t) in enumerate(zip(clients, tokens, strict=True))))
        codes = Counter(r.status_code for r in posts)
        assert len(password_checks) == 20, codes
        assert codes == {401: 20, 429: 40}
        # Until the window has passed even the right password waits, from anywhere.
        r = await log_in(clients[0])
        assert r.status_code == 429 and len(password_checks) == 20


async def test_a_flood_of_login_pages_does_not_log_the_clerk_out(page):
    client, _ = page
    await log_in(client)
    async with httpx.AsyncClient(base_url=client.base_url) as stranger:
        for _ in range(12):
            pages = await asyncio.gather(*(stranger.get("/login") for _ in range(100)))
            assert {r.status_code for r in pages} == {200}
    r = await client.get("/")
    assert r.status_code == 200 and "Log out" in r.text


async def test_forwarded_for_is_ignored_unless_the_proxy_is_trusted(tmp_path):
    config = config_for(tmp_path)  # trusted_proxies is empty by default
    async with running_review(config, "127.0.0.1", 0) as server:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
            for n in range(5):
                client.headers["x-forwarded-for"] = f"203.0.113.{n}"
                assert (await log_in(client, "not the password")).status_code == 401
            client.headers["x-forwarded-for"] = "203.0.113.99"
            assert (await log_in(client)).status_code == 429  # still 127.0.0.1 to the limit


async def test_forwarded_for_from_a_trusted_proxy_names_the_client(tmp_path):
    config = config_for(tmp_path, trusted_proxies=["127.0.0.0/8"])
    qid = hold(tmp_path / "quarantine", make_mail(subject="Cheap watches"))
    async with running_review(config, "127.0.0.1", 0) as server:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
            # What the client writes to the left of the proxy's own entry changes nothing.
            for n in range(5):
                client.headers["x-forwarded-for"] = f"198.51.100.{n}, 203.0.113.7"
                assert (await log_in(client, "not the password")).status_code == 401
            client.headers["x-forwarded-for"] = "198.51.100.99, 203.0.113.7"
            assert (await log_in(client)).status_code == 429
            client.headers["x-forwarded-for"] = "203.0.113.8"  # another visitor
            assert (await log_in(client)).status_code == 303
            confirm = await client.get(f"/confirm?action=delete&id={qid}")
            await client.post("/act", data={"action": "delete", "id": qid,
                                            "csrf": csrf_of(confirm.text)})
    [record] = audit(tmp_path)
    assert record["actor"] == "clerk (web) from 203.0.113.8"


async def test_a_new_password_logs_everyone_out(tmp_path):
    path = write_config(tmp_path, review_overrides(tmp_path))
    set_password(tmp_path)
    async with running_review(load_config(path), "127.0.0.1", 0) as server:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
            await log_in(client)
            assert (await client.get("/")).status_code == 200
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "gateway", "review", "set-password", "--stdin",
                "--config", str(path), cwd=ROOT, stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            async with asyncio.timeout(60):
                out, err = await proc.communicate(b"a brand new passphrase\n")
            assert proc.returncode == 0, err.decode()
            assert "Anyone logged in with the old password is logged out" in out.decode()
            r = await client.get("/")
            assert r.status_code == 303 and r.headers["location"].startswith("/login")
            assert (await log_in(client)).status_code == 401  # the old password is gone
            assert (await log_in(client, "a brand new passphrase")).status_code == 303
            assert (await client.get("/")).status_code == 200


async def test_check_config_explains_secure_cookies_over_plain_http(tmp_path):
    async def check(**review: object) -> str:
        path = write_config(tmp_path, {"review": {"enabled": True, "listen": "127.0.0.1:8025",
                                                  **review}})
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", "check-config", "--config", str(path), cwd=ROOT,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        async with asyncio.timeout(60):
            out, err = await proc.communicate()
        assert proc.returncode == 0, out.decode() + err.decode()  # a note, not a failure
        return out.decode()

    plain = await check()  # secure_cookies is true by default
    assert "OK:" in plain
    assert "review.secure_cookies" in plain
    assert "will not send" in plain and "plain http" in plain
    assert "secure_cookies = false" in plain
    assert "review.secure_cookies" in await check(public_url="http://gateway.local/review")
    assert "review.secure_cookies" not in await check(public_url="https://mail.example")
    assert "review.secure_cookies" not in await check(secure_cookies=False)
    assert "review.secure_cookies" not in await check(enabled=False)  # no page, no warning
