"""Kirkham rule 11 in replies: every message sent carries the footer, right after the sender's own
words; quoted old footers do not count and footers do not pile up at the bottom of a thread."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from gateway.mime.footer import apply_footer
from gateway.mime.replies import html_layout, text_history_start
from tests.footer_support import FOOTERS, check_invariants, parse, text_of, to_bytes

F = FOOTERS["ascii"]
OLD = F.text  # the footer the previous message in the thread carried

TEXT_CASES = [
    # (name, body, the text the footer must come right after, or None for "at the end")
    ("new message", "Hello.\n", None),
    ("bottom-posted reply",
     "On Mon, 6 Jan 2025 at 10:00, Ann <ann@example.org> wrote:\n> Is the hall free?\n>\n> "
     + OLD.replace("\n", "\n> ") + "\n\nYes, it is free.\n", None),
    ("top-posted reply with > quotes",
     "Yes, it is free.\n\nOn Mon, 6 Jan 2025 at 10:00, Ann <ann@example.org> wrote:\n"
     "> Is the hall free?\n> " + OLD.replace("\n", "\n> ") + "\n", "Yes, it is free."),
    ("top-posted, attribution wrapped over two lines",
     "Yes.\n\nOn Mon, 6 Jan 2025 at 10:00, Ann Very-Long-Name\n<ann@example.org> wrote:\n"
     "> Is it?\n", "Yes."),
    ("Outlook top-posted reply",
     "Agreed.\n\n-----Original Message-----\nFrom: Ann\nSent: Monday\nSubject: hall\n\n"
     "Is the hall free?\n\n" + OLD + "\n", "Agreed."),
    ("Outlook underscores and From block",
     "Agreed.\n\n________________________________\nFrom: Ann <ann@example.org>\n"
     "Sent: 06 January 2025 10:00\nTo: Clerk\nSubject: hall\n\nIs it free?\n\n" + OLD + "\n",
     "Agreed."),
    ("Gmail forward",
     "See below.\n\n---------- Forwarded message ---------\nFrom: Ann\nDate: Mon\n\n"
     "Hello\n\n" + OLD + "\n", "See below."),
    ("Apple forward", "FYI\n\nBegin forwarded message:\n\nFrom: Ann\n\nHi\n", "FYI"),
    ("inline answers", "> Question one?\nAnswer one.\n> Question two?\nAnswer two.\n", None),
]


@pytest.mark.parametrize("name,body,after", TEXT_CASES, ids=[c[0] for c in TEXT_CASES])
def test_plain_reply_footer_goes_after_the_senders_own_words(
        name: str, body: str, after: str | None) -> None:
    msg = EmailMessage()
    msg["From"] = "clerk@stanion-pc.gov.uk"
    msg["Subject"] = "Re: hall"
    msg.set_content(body)
    original = to_bytes(msg)
    result = apply_footer(original, F)
    assert result.outcome == "added" and result.data is not None
    check_invariants(original, result.data, F, placement="anywhere")
    text = text_of(parse(result.data))
    first_line = F.text.split("\n")[0]
    at = text.index(first_line)
    if after is None:
        assert text.rstrip().endswith(F.text)
    else:
        assert text[:at].rstrip().endswith(after)
    # Exactly one new footer: the thread's old one (if any) is still there, unchanged.
    assert text.count(first_line) == body.count(first_line) + 1
    assert text.replace(F.text + "\n\n", "", 1).replace("\n\n", "\n") \
        .startswith(body.replace("\n\n", "\n")[:20])


def test_a_top_posted_reply_whose_quote_ends_with_the_old_footer_still_gets_its_own() -> None:
    body = ("Yes.\n\n-----Original Message-----\nFrom: Clerk\nSent: Monday\n\nHello\n\n"
            + OLD + "\n")
    msg = EmailMessage()
    msg.set_content(body)
    out = apply_footer(to_bytes(msg), F)
    assert out.outcome == "added"


def test_a_long_thread_keeps_one_footer_per_message_not_a_pile_at_the_bottom() -> None:
    body = "First message.\n"
    for n in range(4):
        msg = EmailMessage()
        msg.set_content(body)
        out = apply_footer(to_bytes(msg), F).data
        assert out is not None
        sent = text_of(parse(out))
        # The next message top-posts a reply above the quoted history, Outlook style.
        body = f"Reply {n}.\n\n-----Original Message-----\nFrom: someone\nSent: today\n\n{sent}"
    # Each message's footer sits right under its own words.
    assert sent.count(F.text) == 4
    assert sent.startswith("Reply 2.\n\n" + F.text)
    assert not sent.rstrip().endswith(F.text + "\n\n" + F.text)


HTML_CASES = [
    ("new html", "<html><body><p>Hello</p></body></html>", "</body>"),
    ("gmail top-posted",
     '<html><body><div dir="ltr">Yes.</div><br><div class="gmail_quote"><div>On Mon Ann wrote:'
     '</div><blockquote class="gmail_quote">Free?<br>' + F.html + "</blockquote></div>"
     "</body></html>", '<div class="gmail_quote">'),
    ("thunderbird bottom-posted",
     '<html><body><div class="moz-cite-prefix">On Mon Ann wrote:</div><blockquote type="cite">'
     "Free?</blockquote><p>Yes, it is.</p></body></html>", "</body>"),
    ("outlook top-posted",
     '<html><body><div>Agreed.</div><div id="appendonsend"></div><hr><div id="divRplyFwdMsg">'
     "<b>From:</b> Ann</div><div>Free?</div>" + F.html + "</body></html>",
     '<div id="appendonsend">'),
    ("outlook desktop top-posted",
     "<html><body><p>Agreed.</p><div style='border:none;border-top:solid #E1E1E1 1.0pt'>"
     "<p><b>From:</b> Ann</p></div><p>Free?</p></body></html>",
     "<div style='border:none"),
    ("apple top-posted", '<html><body><div>Yes.</div><div><br><blockquote type="cite">'
     "<div>On Mon Ann wrote:</div><div>Free?</div></blockquote></div></body></html>",
     '<blockquote type="cite">'),
]


@pytest.mark.parametrize("name,html,before", HTML_CASES, ids=[c[0] for c in HTML_CASES])
def test_html_reply_footer_goes_after_the_senders_own_words(
        name: str, html: str, before: str) -> None:
    msg = EmailMessage()
    msg["From"] = "clerk@stanion-pc.gov.uk"
    msg.set_content(html, subtype="html")
    original = to_bytes(msg)
    result = apply_footer(original, F)
    assert result.outcome == "added" and result.data is not None
    check_invariants(original, result.data, F, placement="anywhere")
    out = text_of(parse(result.data))
    inserted = out.index(F.html, 0)
    if html.count(F.html):  # the quoted old footer stays where it was, inside the history
        assert out.count(F.html) == 2
        inserted = out.index(F.html)
    assert out[inserted + len(F.html):].lstrip().startswith(before)


def test_history_start_is_none_for_plain_new_text() -> None:
    assert text_history_start("Just a note.\n> not a quote at the end\nbye\n") is None


def test_html_layout_sees_text_written_after_a_quote() -> None:
    html = '<body><blockquote type="cite">old</blockquote>new words</body>'
    assert html_layout(html).history_start(html.index("</body>")) is None
