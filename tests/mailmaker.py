"""Builds test messages and DKIM keys (real RSA keys, real dkimpy signatures)."""

from __future__ import annotations

import base64
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from functools import lru_cache

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

__all__ = ["make_mail", "dkim_key", "dkim_sign", "dkim_txt"]


def make_mail(
    *,
    from_: str = "Pat Resident <pat@resident.example>",
    to: str = "clerk@stanion-pc.gov.uk",
    subject: str = "Pothole on Church Lane",
    body: str | None = "Dear Clerk,\n\nThere is a pothole outside number 4.\n\nPat\n",
    html: str | None = None,
    attachments: tuple[tuple[str, str, bytes], ...] = (),
    headers: tuple[tuple[str, str], ...] = (),
) -> bytes:
    msg = EmailMessage()
    msg["From"] = from_
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain="test.example")
    for name, value in headers:
        msg[name] = value
    if body is None:  # HTML only
        msg.set_content(html or "", subtype="html")
    else:
        msg.set_content(body)
        if html is not None:
            msg.add_alternative(html, subtype="html")
    for filename, ctype, data in attachments:
        maintype, _, subtype = ctype.partition("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


@lru_cache(maxsize=1)
def dkim_key() -> tuple[bytes, str]:
    """(private key PEM, public key base64) made once per test run."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    pub = key.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem, base64.b64encode(pub).decode()


def dkim_txt() -> str:
    return f"v=DKIM1; k=rsa; p={dkim_key()[1]}"


def dkim_sign(data: bytes, domain: str, selector: str = "sel") -> bytes:
    sig = dkim.sign(data, selector.encode(), domain.encode(), dkim_key()[0],
                    include_headers=[b"from", b"to", b"subject", b"date", b"message-id"])
    return sig.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") + data
