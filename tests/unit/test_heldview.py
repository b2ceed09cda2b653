"""Reading held mail safely: nothing active, nothing that drives a terminal (Stanion "Email":
junk is not opened)."""

from __future__ import annotations

import pytest

from gateway.quarantine.view import html_for_reading, view
from gateway.rules.wording import show_hidden
from tests.mailmaker import make_mail


@pytest.mark.parametrize("text,expected", [
    ("plain", "plain"),
    ("a\x1b[31mred", "a<U+001B>[31mred"),
    ("bell\x07", "bell<U+0007>"),
    ("csi\x9b2J", "csi<U+009B>2J"),
    ("evil\u202eexe.pdf", "evil<U+202E>exe.pdf"),
    ("zero\u200bwidth", "zero<U+200B>width"),
    ("tab\tand\nnewline", "tab\tand\nnewline"),
    ("cr\r\nlf", "cr\nlf"),
])
def test_hidden_characters_are_shown_one_way(text, expected):
    assert show_hidden(text) == expected


@pytest.mark.parametrize("html,present,absent", [
    ("<p>Hello <b>there</b></p><script>alert(1)</script>", ["Hello there"], ["alert"]),
    ('<p onclick="steal()">Hi</p>', ["Hi"], ["steal"]),
    ('<span style="display: none">hidden words</span><p>seen</p>', ["seen"], ["hidden words"]),
    ('<div hidden>gone</div>ok', ["ok"], ["gone"]),
    ('<p style="font-size:0">tiny</p>fine', ["fine"], ["tiny"]),
    ('<img src="https://t.example/p.gif" width="1" height="1">x', ["x"], ["t.example"]),
    ('<img src="https://img.example/a.png" alt="Map">', ["[image: Map (not loaded from "
                                                         "img.example)]"], []),
    ('<a href="https://evil.example/x">Your bank</a>', ["Your bank <https://evil.example/x>"],
     []),
    ("<iframe src='https://evil.example'></iframe><form><input value=pw></form>t", ["t"],
     ["evil.example", "pw"]),
    ("<style>p{color:red}</style><p>s</p>", ["s"], ["color"]),
])
def test_html_for_reading(html, present, absent):
    text, _ = html_for_reading(html)
    for p in present:
        assert p in text
    for a in absent:
        assert a not in text


def test_view_lists_attachments_without_opening_them():
    data = make_mail(attachments=(("run me.exe", "application/octet-stream", b"MZ" + b"\0" * 98),
                                  ("notes.txt", "text/plain", b"hello")))
    v = view(data)
    assert [(a.name, a.content_type, a.size) for a in v.attachments] == [
        ("run me.exe", "application/octet-stream", 100), ("notes.txt", "text/plain", 5)]
    assert v.body_type == "text/plain" and "pothole" in v.body
    assert ("Subject", "Pothole on Church Lane") in v.headers


def test_view_notes_a_hidden_html_version():
    v = view(make_mail(html="<p>other words</p>"))
    assert "the message also has an HTML version; the plain text is shown" in v.notes


def test_view_cleans_headers():
    v = view(make_mail(subject="Hi\x1b]0;title\x07"))
    [subject] = [value for name, value in v.headers if name == "Subject"]
    assert "\x1b" not in subject and "<U+001B>" in subject
