"""The clerk's page in a real browser: Debian's headless Chromium driven by Playwright.

The page is served by uvicorn on loopback; releases go to a real SMTP sink; the trust test sends
the sender's next message through the real inbound listener with the junk filter and a real DNS
server on loopback. Kirkham rule 15 and Stanion "Email": held mail is read without being opened,
and hostile content in it stays inert. Screenshots for docs/clerk-guide.md are taken here.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

from gateway.quarantine.store import QuarantineStore
from gateway.review.serve import running_review
from gateway.verdicts import Finding, Severity
from tests.conftest import build_config, running_gateway
from tests.junkkit import CLERK, overrides, talk
from tests.mailmaker import make_mail
from tests.reviewkit import PASSWORD, hold, review_overrides, set_password

ROOT = Path(__file__).resolve().parents[2]
# Screenshots of each run are kept as artifacts in build/screenshots; the ones the docs show are
# refreshed with COUNCIL_UPDATE_SCREENSHOTS=1 (so a test run leaves the work tree clean).
SHOTS = ROOT / ("docs" if os.environ.get("COUNCIL_UPDATE_SCREENSHOTS") else "build") / "screenshots"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
PDF = ("minutes.pdf", "application/pdf", b"%PDF-1.4\n%harmless\n" + b"0" * 2000)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            await b.close()


async def open_page(browser: Browser, port: int, **context: object) -> Page:
    ctx = await browser.new_context(base_url=f"http://127.0.0.1:{port}", **context)
    page = await ctx.new_page()
    page.set_default_timeout(10_000)
    return page


async def log_in(page: Page, password: str = PASSWORD) -> None:
    await page.goto("/login")
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Log in").click()
    await page.wait_for_url("**/")


async def confirm(page: Page, button: str, yes: str) -> None:
    await page.get_by_role("button", name=button).click()
    await page.get_by_role("button", name=yes).click()
    await page.wait_for_url("**/")


def held(tmp_path: Path) -> list:
    return QuarantineStore(tmp_path / "quarantine").list()


def config_for(tmp_path: Path, over: dict | None = None):
    set_password(tmp_path)
    return build_config(tmp_path, {**(over or {}), **review_overrides(tmp_path)})


JUNK = "Looks like junk from a sender the council does not know."


def junk_hold(store: Path, data: bytes, mail_from: str, minutes_ago: float,
              *signals: Finding) -> str:
    """Hold ``data`` as the junk check does: the ``junk`` finding, as serious as its most serious
    signal, then each signal; the reasons are what the clerk reads."""
    first = Finding("junk", "junk", max(s.severity for s in signals), JUNK)
    findings = (first, *signals)
    return hold(store, data, mail_from=mail_from, minutes_ago=minutes_ago,
                reasons=tuple(f.text for f in findings), findings=findings)


def realistic_mail(tmp_path: Path) -> str:
    """A quarantine like a clerk's Monday morning; returns the id of the one to open."""
    q = tmp_path / "quarantine"
    junk_hold(q, make_mail(from_="Garden Deals <deals@shop.example>",
                           subject="Limited time offer on garden benches",
                           body="Act now for the best price on benches for your village "
                                "green.\n"),
              "deals@shop.example", 300,
              Finding("junk", "advertising", Severity.LOW,
                      'Reads like unsolicited advertising: "limited time offer", "act now", '
                      '"best price".'))
    junk_hold(q, make_mail(from_='"Chairman" <chairman.stanion@gmail.com>',
                           subject="Urgent payment needed today",
                           body="Please pay the attached invoice today. I am in a meeting.\n"),
              "chairman.stanion@gmail.com", 90,
              Finding("junk", "display-name-impersonation", Severity.HIGH,
                      'Looks like phishing: the name says "Chairman" but the address is a '
                      "free-mail one (chairman.stanion@gmail.com)."))
    return junk_hold(q, make_mail(from_="Pat Resident <pat@resident.example>",
                                  subject="Minutes of the allotment society meeting",
                                  body="Dear Clerk,\n\nPlease find attached the minutes of our "
                                       "last meeting, as promised at the council meeting.\n\n"
                                       "Links: https://allotments.example/minutes\n\n"
                                       "Best wishes,\nPat\n",
                                  attachments=(PDF,)),
                     "pat@resident.example", 5,
                     Finding("junk", "attachment-unknown-sender", Severity.MEDIUM,
                             "Has 1 attachment (minutes.pdf) from a sender the council does "
                             "not know; attachments are opened only from trusted sources."))


async def test_logged_out_access_is_refused(tmp_path, browser):
    config = config_for(tmp_path)
    qid = realistic_mail(tmp_path)
    async with running_review(config, "127.0.0.1", 0) as server:
        page = await open_page(browser, server.port)
        for path in ("/", f"/message/{qid}", f"/confirm?action=delete&id={qid}"):
            await page.goto(path)
            assert "/login" in page.url
            await page.get_by_label("Password").wait_for()
            assert "allotment" not in await page.content()
        await page.get_by_label("Password").fill("wrong password")
        await page.get_by_role("button", name="Log in").click()
        await page.get_by_text("That password is not right").wait_for()
        assert "allotment" not in await page.content()
    assert len(held(tmp_path)) == 3


async def test_log_in_list_open_and_release(tmp_path, browser, smtp_sink):
    config = config_for(tmp_path, {"inbound": {"deliver_to": smtp_sink.url}})
    qid = realistic_mail(tmp_path)
    async with running_review(config, "127.0.0.1", 0) as server:
        page = await open_page(browser, server.port, viewport={"width": 1200, "height": 640})
        await log_in(page)
        rows = page.locator("table.held tbody tr")
        assert await rows.count() == 3
        subjects = await page.locator("td.subject").all_inner_texts()
        assert subjects[0] == "Minutes of the allotment society meeting"  # newest first
        assert "Looks like phishing" in await page.locator("td.why").nth(1).inner_text()
        await page.screenshot(path=str(SHOTS / "list.png"), full_page=True)

        await page.get_by_role("link", name="Minutes of the allotment society meeting").click()
        await page.wait_for_url(f"**/message/{qid}")
        assert "Please find attached the minutes" in await page.locator("pre.body").inner_text()
        assert "minutes.pdf" in await page.locator("table.files").inner_text()
        # a web address in the text is shown, never made into a link
        assert await page.locator("a[href*='allotments.example']").count() == 0
        await page.screenshot(path=str(SHOTS / "message.png"), full_page=True)

        await page.get_by_role("button", name="Release…", exact=True).click()
        await page.get_by_role("heading", name="Release this message?").wait_for()
        assert [h.id for h in held(tmp_path)].count(qid) == 1  # asking changed nothing
        await page.get_by_role("button", name="Yes, release it").click()
        await page.wait_for_url("**/")
        status = await page.get_by_role("status").inner_text()
        assert "Released: delivered to clerk@stanion-pc.gov.uk." in status
    [msg] = await smtp_sink.wait_for(1)
    assert msg.mail_from == "pat@resident.example" and msg.rcpt_tos == [CLERK]
    assert b"Minutes of the allotment society meeting" in msg.data
    assert qid not in [h.id for h in held(tmp_path)]


async def test_trusted_senders_next_mail_is_delivered(tmp_path, browser, dns_server, smtp_sink):
    # resident.example sends from this machine: a known sender must also prove who they are
    dns_server.add("resident.example", "TXT", "v=spf1 ip4:127.0.0.1 -all")
    over = overrides(tmp_path, dns_server.address, smtp_sink.url)
    config = config_for(tmp_path, over)
    first = make_mail(subject="Allotment minutes", attachments=(PDF,))
    second = make_mail(subject="Allotment accounts", attachments=(PDF,))
    async with running_gateway(config) as gw, \
            running_review(config, "127.0.0.1", 0) as server:
        code, _ = await talk(gw.inbound_port, "pat@resident.example", [CLERK], first)
        assert code == 250 and smtp_sink.messages == []
        [h] = held(tmp_path)  # an unknown sender with an attachment is held
        page = await open_page(browser, server.port)
        await log_in(page)
        await page.get_by_role("link", name="Allotment minutes").click()
        await confirm(page, "Release and trust sender…", "Yes, release it and trust the sender")
        assert "Released" in await page.get_by_role("status").inner_text()
        await smtp_sink.wait_for(1)
        code, _ = await talk(gw.inbound_port, "pat@resident.example", [CLERK], second)
        assert code == 250
        [_, delivered] = await smtp_sink.wait_for(2)
    assert b"Allotment accounts" in delivered.data
    assert held(tmp_path) == []
    assert "pat@resident.example" in (tmp_path / "known-senders.txt").read_text()


async def test_delete_one_and_delete_selected(tmp_path, browser):
    config = config_for(tmp_path)
    qid = realistic_mail(tmp_path)
    async with running_review(config, "127.0.0.1", 0) as server:
        page = await open_page(browser, server.port)
        await log_in(page)
        await page.goto(f"/message/{qid}")
        await confirm(page, "Delete…", "Yes, delete it")
        assert "Deleted" in await page.get_by_role("status").inner_text()
        assert len(held(tmp_path)) == 2
        # the rest, by ticking both boxes, using the keyboard for the second
        await page.get_by_label("Select the message from Garden Deals").check()
        await page.get_by_label("Select the message from Chairman").focus()
        await page.keyboard.press("Space")
        await page.get_by_role("button", name="Delete selected…").click()
        await page.get_by_role("heading", name="Delete these 2 messages?").wait_for()
        await page.get_by_role("button", name="Yes, delete it").focus()
        await page.keyboard.press("Enter")
        await page.wait_for_url("**/")
        assert "Deleted 2 messages." in await page.get_by_role("status").inner_text()
        assert "Nothing is held" in await page.locator("main").inner_text()
    assert held(tmp_path) == []


async def test_forms_without_the_right_token_are_refused(tmp_path, browser):
    config = config_for(tmp_path)
    qid = realistic_mail(tmp_path)
    async with running_review(config, "127.0.0.1", 0) as server:
        page = await open_page(browser, server.port)
        await log_in(page)
        # a wrong token in the real confirmation form
        await page.goto(f"/confirm?action=delete&id={qid}")
        await page.locator("form.confirm input[name=csrf]").evaluate(
            "el => { el.value = 'forged-token'; }")
        await page.get_by_role("button", name="Yes, delete it").click()
        await page.get_by_role("heading", name="That was not done").wait_for()
        # no token at all, posted with the browser's own (logged-in) cookies
        r = await page.request.post(f"http://127.0.0.1:{server.port}/act",
                                    form={"action": "delete", "id": qid}, max_redirects=0)
        assert r.status == 403
        await page.goto("/")
        assert await page.locator("table.held tbody tr").count() == 3
    assert len(held(tmp_path)) == 3
    assert not (tmp_path / "logs" / "audit.jsonl").exists()


HOSTILE_HTML = """<html><head><script>alert('head')</script></head><body>
<p onmouseover="alert('attr')">Hello <b>clerk</b></p>
<script>alert(document.cookie)</script>
<img src=x onerror="alert('img')">
<svg onload="alert('svg')"></svg>
<a href="javascript:alert('link')">Click to verify your account</a>
<iframe src="javascript:alert('frame')"></iframe>
</body></html>"""

RLO = "\u202e"


def hostile_messages(tmp_path: Path) -> list[str]:
    q = tmp_path / "quarantine"
    ids = [
        hold(q, make_mail(from_='"<script>alert(1)</script>" <x@evil.example>',
                          subject=f"<script>alert('subject')</script> invoice{RLO}fdp.exe",
                          body=None, html=HOSTILE_HTML,
                          attachments=((f"<img src=x onerror=alert(9)>{RLO}gpj.exe",
                                        "application/octet-stream", b"MZ"),)),
             mail_from="x@evil.example",
             reasons=("<script>alert('reason')</script> Looks like phishing",)),
    ]
    # malformed UTF-8 in the subject and body, raw 8-bit
    raw = (b"From: Bad Bytes <bad@evil.example>\r\nTo: clerk@stanion-pc.gov.uk\r\n"
           b"Subject: Caf\xe9 \xff\xfe <script>alert('bytes')</script>\r\n"
           b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
           b"Body with \xc3\x28 bad bytes and <script>alert('body')</script>\r\n")
    ids.append(hold(q, raw, mail_from="bad@evil.example"))
    return ids


async def test_hostile_content_stays_inert(tmp_path, browser):
    config = config_for(tmp_path)
    ids = hostile_messages(tmp_path)
    dialogs: list[str] = []
    async with running_review(config, "127.0.0.1", 0) as server:
        page = await open_page(browser, server.port)
        page.on("dialog", lambda d: dialogs.append(d.message))
        await log_in(page)
        for path in ["/", *(f"/message/{i}" for i in ids),
                     f"/confirm?action=delete&id={ids[0]}&id={ids[1]}"]:
            await page.goto(path)
            await page.locator("main").hover()
            dom = await page.evaluate("""() => ({
                scripts: document.querySelectorAll('script').length,
                handlers: [...document.querySelectorAll('*')].filter(
                    el => [...el.attributes].some(a => a.name.startsWith('on'))).length,
                jsLinks: document.querySelectorAll('[href^="javascript:" i], [src]').length,
                frames: document.querySelectorAll('iframe, svg, img, object, embed').length,
                text: document.body.innerText,
            })""")
            assert dom["scripts"] == 0, path
            assert dom["handlers"] == 0, path
            assert dom["jsLinks"] == 0, path
            assert dom["frames"] == 0, path
            assert RLO not in dom["text"], path
            if path == "/":
                assert "<script>alert('subject')</script> invoice<U+202E>fdp.exe" in dom["text"]
            if path == f"/message/{ids[0]}":
                assert "Click to verify your account <javascript:alert('link')>" in dom["text"]
                assert "<U+202E>gpj.exe" in dom["text"]
            if path == f"/message/{ids[1]}":
                assert "<script>alert('body')</script>" in dom["text"]
    assert dialogs == []


async def test_readable_at_200_percent_zoom(tmp_path, browser):
    config = config_for(tmp_path)
    qid = realistic_mail(tmp_path)
    async with running_review(config, "127.0.0.1", 0) as server:
        # a 1280-pixel-wide screen at 200% zoom lays out like a 640-pixel one, twice as sharp
        page = await open_page(browser, server.port, viewport={"width": 640, "height": 480},
                               device_scale_factor=2)
        await log_in(page)
        for path in ("/", f"/message/{qid}", f"/confirm?action=release&id={qid}"):
            await page.goto(path)
            overflow = await page.evaluate(
                "() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert overflow <= 0, path
            unlabelled = await page.evaluate("""() => [...document.querySelectorAll(
                'input:not([type=hidden]), select, textarea')].filter(el =>
                !(el.id && document.querySelector(`label[for="${el.id}"]`))).length""")
            assert unlabelled == 0, path
