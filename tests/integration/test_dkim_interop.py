"""Inbound DKIM verification of a signature made by a different implementation: Perl Mail::DKIM."""

from __future__ import annotations

import subprocess

from gateway.authcheck.dkim import verify_dkim
from gateway.authcheck.resolver import DnsConfig, Resolver, _nameserver
from tests.mailmaker import dkim_key, dkim_txt, make_mail

SIGNER = r"""
use strict; use Mail::DKIM::Signer; use Mail::DKIM::TextWrap;
my $s = Mail::DKIM::Signer->new(Algorithm => 'rsa-sha256', Method => 'relaxed',
    Domain => 'perl-signed.example', Selector => 'p1', KeyFile => $ARGV[0]);
binmode STDIN; while (<STDIN>) { s/\015?\012/\015\012/; $s->PRINT($_); }
$s->CLOSE; print $s->signature->as_string, "\015\012";
"""


def perl_sign(data: bytes, key_file: str) -> bytes:
    out = subprocess.run(["perl", "-e", SIGNER, key_file], input=data, capture_output=True,
                         check=True, timeout=30).stdout
    return out + data


async def test_signature_from_perl_mail_dkim_verifies(dns_server, tmp_path):
    key = tmp_path / "key.pem"
    key.write_bytes(dkim_key()[0])
    dns_server.add("p1._domainkey.perl-signed.example", "TXT", dkim_txt())
    resolver = Resolver(DnsConfig(nameservers=(_nameserver(dns_server.address),), timeout=1))
    signed = perl_sign(make_mail(from_="a@perl-signed.example"), str(key))
    assert signed.startswith(b"DKIM-Signature:")
    [ok] = await verify_dkim(resolver, signed)
    assert (ok.result, ok.domain, ok.selector) == ("pass", "perl-signed.example", "p1")
    [bad] = await verify_dkim(resolver, signed.replace(b"Subject: Pothole", b"Subject: Pathole"))
    assert bad.result == "fail"
