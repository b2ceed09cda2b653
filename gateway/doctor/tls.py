"""The gateway's TLS certificate: readable, a pair with its key, in date, naming the gateway, and
sent with its issuer.

The ``assess_*`` functions take parsed certificates (``cryptography``) and the time; reading the
files is :func:`check_tls`. :func:`assess_dates` and :func:`describe` serve the next hops'
certificates too.
"""

from __future__ import annotations

import ipaddress
import ssl
import warnings
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.x509.oid import NameOID

from gateway.config import TlsConfig
from gateway.doctor.results import Result, ok, problem, warning

__all__ = ["WARN_DAYS", "assess_chain", "assess_dates", "assess_names", "assess_pair",
           "certificate_names", "check_tls", "describe", "name_matches", "trusted_subjects"]

WARN_DAYS = 21  # a certificate that ends sooner than this is a warning


def describe(name: x509.Name) -> str:
    """A name as a person reads it: its common name, else the whole name."""
    common = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    if common:
        value = common[0].value
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    return name.rfc4514_string() or "(no name)"


def certificate_names(cert: x509.Certificate) -> tuple[list[str], bool]:
    """The names a certificate is for (DNS names and IP addresses of its subjectAltName), and
    whether they came from there; without one, its common name, which clients ignore today."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [describe(cert.subject)], False
    ips = [str(a) for a in san.get_values_for_type(x509.IPAddress)]
    return [*san.get_values_for_type(x509.DNSName), *ips], True


def name_matches(pattern: str, hostname: str) -> bool:
    """RFC 6125: the same name (any case, no trailing dot), or ``*.`` standing for exactly one
    left-most label."""
    pattern, hostname = pattern.lower().rstrip("."), hostname.lower().rstrip(".")
    if pattern == hostname:
        return True
    try:
        return ipaddress.ip_address(pattern) == ipaddress.ip_address(hostname)
    except ValueError:
        pass
    if not pattern.startswith("*.") or "." not in hostname:
        return False
    first, _, rest = hostname.partition(".")
    return bool(first) and rest == pattern[2:] and rest.count(".") >= 1


def _spki(key: PrivateKeyTypes | x509.Certificate) -> bytes:
    public = key.public_key()
    return public.public_bytes(serialization.Encoding.DER,
                               serialization.PublicFormat.SubjectPublicKeyInfo)


def assess_pair(cert: x509.Certificate, key: PrivateKeyTypes, cert_file: str, key_file: str
                ) -> Result:
    if _spki(cert) != _spki(key):
        return problem("tls.key", key_file,
                       f'The key "{key_file}" does not match the certificate "{cert_file}": '
                       "STARTTLS cannot work with them.",
                       "Set key_file to the key the certificate was issued for (with Let's "
                       "Encrypt: privkey.pem beside fullchain.pem).")
    return ok("tls.key", key_file, f'The key "{key_file}" matches the certificate "{cert_file}".')


def assess_dates(check: str, subject: str, cert: x509.Certificate, now: datetime,
                 whose: str, fix: str) -> Result:
    """``whose``: how the sentence names the certificate, e.g. 'The certificate "x.pem"'."""
    until = cert.not_valid_after_utc
    if now < cert.not_valid_before_utc:
        return problem(check, subject, f"{whose} is not valid until "
                                       f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC "
                                       "(is this machine's clock right?).", fix)
    if now >= until:
        return problem(check, subject, f"{whose} expired on {until:%Y-%m-%d}: mail servers and "
                                       "mail programs that check it refuse the connection.", fix)
    left = until - now
    if left < timedelta(days=WARN_DAYS):
        days = max(left.days, 0)
        return warning(check, subject, f"{whose} expires on {until:%Y-%m-%d}, in {days} "
                                       f"day{'s' if days != 1 else ''}.", fix)
    return ok(check, subject, f"{whose} is valid until {until:%Y-%m-%d}.")


def assess_names(cert: x509.Certificate, hostname: str, cert_file: str) -> Result:
    names, from_san = certificate_names(cert)
    listed = ", ".join(names) or "no name"
    if not from_san:
        return problem("tls.names", cert_file,
                       f'The certificate "{cert_file}" has no subjectAltName, only the common '
                       f"name {listed}, which mail programs no longer accept.",
                       f"Get a certificate for {hostname} (any certificate authority, or Let's "
                       "Encrypt, gives one with a subjectAltName).")
    if not any(name_matches(n, hostname) for n in names):
        return problem("tls.names", cert_file,
                       f'The certificate "{cert_file}" is for {listed}, not for the gateway\'s '
                       f"hostname {hostname}: mail programs that check it refuse to connect.",
                       f"Get a certificate that names {hostname}, or set [gateway] hostname to "
                       "the name the certificate is for.")
    return ok("tls.names", cert_file, f'The certificate "{cert_file}" is for {hostname}.')


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except Exception:  # ValueError, TypeError, InvalidSignature: not this issuer
        return False
    return True


def assess_chain(certs: Sequence[x509.Certificate], trusted: Collection[x509.Name],
                 cert_file: str) -> Result:
    """``certs`` the certificates in the file, in order; ``trusted`` the subjects of the root
    certificates this machine trusts."""
    leaf = certs[0]
    issuer = describe(leaf.issuer)
    if leaf.issuer == leaf.subject and _issued_by(leaf, leaf):
        return warning("tls.chain", cert_file,
                       f'The certificate "{cert_file}" is self-signed: other mail servers '
                       "accept it for encryption, but councillors' mail programs warn about it.",
                       "Use a certificate from a certificate authority (Let's Encrypt is free).")
    if any(c.subject == leaf.issuer and _issued_by(leaf, c) for c in certs[1:]):
        return ok("tls.chain", cert_file, f'The certificate "{cert_file}" is sent with the '
                                          f"certificate of its issuer, {issuer}.")
    if leaf.issuer in trusted:
        return ok("tls.chain", cert_file, f'The certificate "{cert_file}" is issued by '
                                          f"{issuer}, a root this machine trusts.")
    return warning("tls.chain", cert_file,
                   f'The certificate "{cert_file}" is issued by {issuer}, but that issuer\'s '
                   "certificate is not in the file: clients that do not have it cannot check "
                   "the gateway's certificate.",
                   "Put the issuer's (intermediate) certificate after the gateway's in the file "
                   "(with Let's Encrypt: use fullchain.pem, not cert.pem).")


def trusted_subjects() -> set[x509.Name]:
    """The subjects of the root certificates in this machine's default CA bundle."""
    cafile = ssl.get_default_verify_paths().cafile
    if not cafile:
        return set()
    try:
        with warnings.catch_warnings():  # old roots with odd serial numbers: still roots
            warnings.simplefilter("ignore")
            certs = x509.load_pem_x509_certificates(Path(cafile).read_bytes())
    except (OSError, ValueError):
        return set()
    return {c.subject for c in certs}


def check_tls(tls: TlsConfig, hostname: str, now: datetime,
              trusted: Collection[x509.Name] | None = None) -> list[Result]:
    """Read ``[tls]`` cert_file and key_file and assess them (each file read once)."""
    if tls.cert_file is None or tls.key_file is None:
        return [warning("tls.files", "[tls]",
                        "No TLS certificate is set, so the gateway offers no STARTTLS: mail "
                        "arrives unencrypted, and councillors can log in only from this machine.",
                        "Set [tls] cert_file and key_file (PEM files; Let's Encrypt's "
                        "fullchain.pem and privkey.pem).")]
    cert_file, key_file = str(tls.cert_file), str(tls.key_file)
    try:
        cert_data = tls.cert_file.read_bytes()
    except OSError as e:
        return [problem("tls.files", cert_file, f'The certificate "{cert_file}" cannot be read '
                                                f"({e.strerror}).",
                        "Check the path in [tls] cert_file and that the gateway's user may read "
                        "it.")]
    try:
        key_data = tls.key_file.read_bytes()
    except OSError as e:
        return [problem("tls.files", key_file, f'The key "{key_file}" cannot be read '
                                               f"({e.strerror}).",
                        "Check the path in [tls] key_file and that the gateway's user may read "
                        "it.")]
    try:
        certs = x509.load_pem_x509_certificates(cert_data)
    except ValueError:
        return [problem("tls.files", cert_file, f'"{cert_file}" holds no certificate in PEM '
                                                "form.",
                        "Set cert_file to the certificate file (it starts with -----BEGIN "
                        "CERTIFICATE-----).")]
    try:
        key = serialization.load_pem_private_key(key_data, password=None)
    except TypeError:
        return [problem("tls.files", key_file, f'The key "{key_file}" is protected by a '
                                               "passphrase, which the gateway cannot type.",
                        f"Remove the passphrase: openssl pkey -in {key_file} -out "
                        "new.key, then use new.key (readable by the gateway's user only).")]
    except Exception:  # ValueError, UnsupportedAlgorithm: not a key this machine can use
        return [problem("tls.files", key_file, f'"{key_file}" holds no private key in PEM '
                                               "form that this machine can use.",
                        "Set key_file to the certificate's private key (it starts with "
                        "-----BEGIN PRIVATE KEY----- or similar).")]
    renew = (f'Renew the certificate for {hostname} and put it in "{cert_file}", then reload '
             "the gateway (SIGHUP).")
    return [
        ok("tls.files", cert_file, f'The certificate "{cert_file}" and the key "{key_file}" '
                                   "can be read."),
        assess_pair(certs[0], key, cert_file, key_file),
        assess_dates("tls.expiry", cert_file, certs[0], now, f'The certificate "{cert_file}"',
                     renew),
        assess_names(certs[0], hostname, cert_file),
        assess_chain(certs, trusted_subjects() if trusted is None else trusted, cert_file),
    ]
