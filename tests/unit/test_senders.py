"""Known, learned and blocked senders (Stanion "Email": attachments only from trusted sources)."""

from __future__ import annotations

import asyncio

import pytest

from gateway.people.senders import (
    Entry,
    SendersConfig,
    block_sender,
    learn_recipients,
    load_book,
    parse_entry,
    read_entries,
    remove_everywhere,
    trust_sender,
)
from tests.conftest import build_config


@pytest.mark.parametrize("line,expected", [
    ("jane@nalc.gov.uk", Entry("jane@nalc.gov.uk")),
    ("  <Jane@NALC.gov.uk> ", Entry("jane@nalc.gov.uk")),
    ('"Jane  Smith" <jane@nalc.gov.uk>', Entry("jane@nalc.gov.uk", "Jane Smith")),
    ("@NALC.gov.uk", Entry("@nalc.gov.uk")),
])
def test_parse_entry(line, expected):
    assert parse_entry(line) == expected


@pytest.mark.parametrize("line,message", [
    ("nalc.gov.uk", 'write "@nalc.gov.uk" for a whole domain'),
    ("not an address", "is not an address like"),
    ("a@b", "is not an address like"),
])
def test_parse_entry_problems(line, message):
    with pytest.raises(ValueError, match=message):
        parse_entry(line)


def test_config_problems_are_reported(tmp_path):
    from gateway.config import ConfigError
    with pytest.raises(ConfigError) as err:
        build_config(tmp_path, {"senders": {"known": ["nalc.gov.uk"], "lern": True}})
    text = str(err.value)
    assert 'senders.known[0]' in text and '"@nalc.gov.uk"' in text
    assert 'senders.lern' in text and 'did you mean "learn"' in text


def _book_args(cfg):
    return cfg.section(SendersConfig), cfg.gateway.council_domains


def config(tmp_path, **senders):
    return build_config(tmp_path, {"senders": {
        "known": ["@northants.gov.uk"],
        "file": str(tmp_path / "known.txt"),
        "learned_file": str(tmp_path / "learned.txt"),
        "blocked_file": str(tmp_path / "blocked.txt"),
        **senders}})


def test_book_reads_config_file_and_learned(tmp_path):
    (tmp_path / "known.txt").write_text("# the clerk's list\n"
                                        "Jane Smith <jane@nalc.gov.uk>  # NALC\n"
                                        "bad line\n@suppliers.example\n")
    (tmp_path / "learned.txt").write_text("friend@gmail.com\n")
    (tmp_path / "blocked.txt").write_text("@spam.example\n")
    book = load_book(*_book_args(config(tmp_path)))
    assert book.known_source("JANE@nalc.gov.uk") == "file"
    assert book.known_source("anyone@suppliers.example") == "file"
    assert book.known_source("x@northants.gov.uk") == "config"
    assert book.known_source("friend@gmail.com") == "learned"
    assert book.known_source("clerk@stanion-pc.gov.uk") == "council"
    assert book.known_source("other@gmail.com") is None
    assert book.is_blocked("a@spam.example") and not book.is_blocked("a@ok.example")
    assert book.names == (("Jane Smith", "jane@nalc.gov.uk"),)


async def test_learn_recipients_after_outbound_mail(tmp_path):
    cfg = config(tmp_path)
    (tmp_path / "blocked.txt").write_text("nasty@spam.example\n")
    learned = await learn_recipients(cfg, ["Planning@District.example", "clerk@stanion-pc.gov.uk",
                                           "x@northants.gov.uk", "nasty@spam.example",
                                           "planning@district.example", "not-an-address"])
    assert learned == ["planning@district.example"]
    assert await learn_recipients(cfg, ["planning@district.example"]) == []
    assert read_entries(tmp_path / "learned.txt") == [Entry("planning@district.example")]
    assert load_book(*_book_args(cfg)).known_source("planning@district.example") == "learned"


async def test_learning_concurrently_loses_nothing(tmp_path):
    cfg = config(tmp_path)
    addresses = [f"person{i}@place{i}.example" for i in range(40)]
    await asyncio.gather(*(learn_recipients(cfg, [a]) for a in addresses))
    assert sorted(e.value for e in read_entries(tmp_path / "learned.txt")) == sorted(addresses)


async def test_learning_can_be_switched_off(tmp_path):
    assert await learn_recipients(config(tmp_path, learn=False), ["a@b.example"]) == []


def test_trust_block_and_remove(tmp_path):
    cfg = config(tmp_path)
    (tmp_path / "known.txt").write_text("# comment kept\njane@nalc.gov.uk\n")
    assert block_sender(cfg, "pest@spam.example")
    assert load_book(*_book_args(cfg)).is_blocked("pest@spam.example")
    assert trust_sender(cfg, "pest@spam.example")  # trusting unblocks
    book = load_book(*_book_args(cfg))
    assert not book.is_blocked("pest@spam.example")
    assert book.known_source("pest@spam.example") == "file"
    assert not trust_sender(cfg, "pest@spam.example")  # already there
    assert remove_everywhere(cfg, "PEST@spam.example") == ["known senders file"]
    assert (tmp_path / "known.txt").read_text() == "# comment kept\njane@nalc.gov.uk\n"
    assert remove_everywhere(cfg, "nobody@x.example") == []
