"""DKIM signing (RFC 6376) with dkimpy, and the keys it needs.

The signature is made over the exact bytes that leave the gateway, after every other change.
Headers are chosen as RFC 6376 section 5.4.1 advises, and the ones a message should have at most
once are over-signed (listed once more than they occur, section 5.4.2 and 8.15), so nobody can add
a second From, To or Subject later without breaking the signature.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from email.utils import getaddresses
from pathlib import Path

import dkim
import dkim.crypto
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from gateway.files import replace_file

__all__ = [
    "SIGNED_HEADERS",
    "OVERSIGNED_HEADERS",
    "SigningKey",
    "KeyError_",
    "header_list",
    "sign",
    "load_private_key",
    "generate_key",
    "txt_record",
    "zone_line",
    "write_private_key",
    "from_domains",
]

#: RFC 6376 section 5.4.1: the header fields to sign when present.
SIGNED_HEADERS = (
    "from", "sender", "reply-to", "subject", "date", "message-id", "to", "cc",
    "mime-version", "content-type", "content-transfer-encoding", "content-id",
    "content-description", "resent-date", "resent-from", "resent-sender", "resent-to",
    "resent-cc", "resent-message-id", "in-reply-to", "references", "list-id", "list-help",
    "list-unsubscribe", "list-subscribe", "list-post", "list-owner", "list-archive",
)
#: Fields a message carries at most once (RFC 5322 section 3.6 and the MIME ones): signed one
#: extra time, so that adding another instance breaks the signature.
OVERSIGNED_HEADERS = (
    "from", "sender", "reply-to", "subject", "date", "message-id", "to", "cc",
    "in-reply-to", "references", "mime-version", "content-type", "content-transfer-encoding",
)

ALGORITHMS = ("rsa-sha256", "ed25519-sha256")


class KeyError_(ValueError):  # noqa: N801 - "KeyError" is taken by the builtin
    """A private key file that cannot be used for signing."""


@dataclass(frozen=True)
class SigningKey:
    domain: str
    selector: str
    algorithm: str  # "rsa-sha256" or "ed25519-sha256"
    private_key: bytes = field(repr=False)  # as dkimpy takes it: PEM, or base64 ed25519 seed


_HEADER_NAME = re.compile(rb"^([!-9;-~]+)[ \t]*:", re.MULTILINE)


def _header_names(data: bytes) -> list[str]:
    end = re.search(rb"\r?\n\r?\n", data)
    block = data[:end.start() + 1] if end else data
    return [m.group(1).decode("ascii").lower() for m in _HEADER_NAME.finditer(block)]


def header_list(names: Iterable[str]) -> list[str]:
    """The h= list for a message whose header field names are ``names``: each field that is
    there, and once more for those that must stay single. A field that is not there is not
    listed: naming it would forbid a server on the way from adding it (a Date: or Message-ID:
    that a next hop adds to mail without one), and the signature would fail."""
    present = [n.lower() for n in names]
    out: list[str] = []
    for name in SIGNED_HEADERS:
        count = present.count(name)
        out.extend([name] * count)
        if count and name in OVERSIGNED_HEADERS:
            out.append(name)
    return out


def sign(data: bytes, keys: Sequence[SigningKey]) -> bytes:
    """The DKIM-Signature fields (CRLF-terminated) to put on top of ``data``, one per key.

    Each signature covers ``data`` exactly as given (relaxed/relaxed canonicalisation).
    """
    include = [h.encode("ascii") for h in header_list(_header_names(data))]
    out = b""
    for key in keys:  # the first key's signature on top: some receivers check only that one
        out += dkim.sign(
            data, key.selector.encode("ascii"), key.domain.encode("ascii"), key.private_key,
            canonicalize=(b"relaxed", b"relaxed"),
            signature_algorithm=key.algorithm.encode("ascii"),
            include_headers=include, linesep=b"\r\n",
        )
    return out


def load_private_key(path: Path, algorithm: str = "rsa-sha256") -> bytes:
    """Read a key file and check dkimpy can sign with it (raises KeyError_, OSError)."""
    data = path.read_bytes()
    if algorithm == "rsa-sha256":
        try:
            key = dkim.crypto.parse_pem_private_key(data.replace(b"\r\n", b"\n"))
        except dkim.crypto.UnparsableKeyError:
            raise KeyError_("is not an RSA private key in PEM form "
                            "(make one with: council-gateway dkim-keygen)") from None
        if key["modulus"].bit_length() < 1024:
            raise KeyError_("is an RSA key shorter than 1024 bits; receivers ignore those "
                            "(make a 2048-bit one with: council-gateway dkim-keygen)")
        return data
    seed = data.strip()
    try:
        raw = base64.b64decode(seed, validate=True)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise KeyError_("is not an ed25519 private key (32 bytes in base64) "
                        "(make one with: council-gateway dkim-keygen --algorithm ed25519)")
    return seed


def generate_key(algorithm: str = "rsa-sha256", bits: int = 2048) -> tuple[bytes, str]:
    """A new key: (private key file contents, the ``p=`` public key for DNS)."""
    if algorithm == "rsa-sha256":
        private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        pem = private.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.TraditionalOpenSSL,
                                    serialization.NoEncryption())
        public = private.public_key().public_bytes(serialization.Encoding.DER,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)
        return pem, base64.b64encode(public).decode("ascii")
    if algorithm == "ed25519-sha256":
        ed = ed25519.Ed25519PrivateKey.generate()
        seed = ed.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                serialization.NoEncryption())
        public = ed.public_key().public_bytes(serialization.Encoding.Raw,
                                              serialization.PublicFormat.Raw)
        return base64.b64encode(seed) + b"\n", base64.b64encode(public).decode("ascii")
    raise ValueError(f"unknown algorithm {algorithm!r}")


def txt_record(algorithm: str, public: str) -> str:
    """The TXT record's text, e.g. ``v=DKIM1; k=rsa; p=MIIB...``."""
    k = "rsa" if algorithm == "rsa-sha256" else "ed25519"
    return f"v=DKIM1; k={k}; p={public}"


def zone_line(selector: str, domain: str, txt: str) -> str:
    """A DNS zone-file line, the text split into the 255-byte strings TXT records hold."""
    chunks = " ".join(f'"{txt[i:i + 250]}"' for i in range(0, len(txt), 250))
    return f"{selector}._domainkey.{domain}. IN TXT ( {chunks} )"


def write_private_key(path: Path, data: bytes, *, replace: bool = False) -> None:
    """Write a private key readable by its owner only (0600); refuses to overwrite unless
    ``replace``, in which case the new file takes the old one's place atomically."""
    replace_file(path, data, exclusive=not replace)


def from_domains(from_values: Iterable[str]) -> list[str]:
    """The domains of the addresses in the From field(s), lower-cased."""
    return [addr.rpartition("@")[2].lower().rstrip(".")
            for _, addr in getaddresses([str(v) for v in from_values]) if "@" in addr]
