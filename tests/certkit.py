"""Certificates for tests, made with ``cryptography``: a CA of our own and the certificates it
issues (good, expired, for another name, self-signed), written as PEM files."""

from __future__ import annotations

import ipaddress
import subprocess
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = ["Issued", "TestCa", "write_key"]

Key = ec.EllipticCurvePrivateKey


def _key() -> Key:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def write_key(path: Path, key: Key) -> Path:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)
    return path


@dataclass(frozen=True)
class Issued:
    cert_file: Path  # the certificate, and the CA's after it when ``chain``
    key_file: Path
    cert: x509.Certificate


class TestCa:
    """A certificate authority of the test's own, in ``folder``."""

    __test__ = False  # not a test class, whatever pytest thinks of its name

    def __init__(self, folder: Path, name: str = "Council Test CA"):
        self.folder = folder
        self.key = _key()
        now = datetime.now(timezone.utc)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(_name(name)).issuer_name(_name(name))
            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.ca_file = folder / "ca.pem"
        self.ca_file.write_bytes(_pem(self.cert))

    def issue(self, stem: str, names: list[str], *, days: float = 90, start_days: float = -1,
              chain: bool = True, self_signed: bool = False) -> Issued:
        """A certificate for ``names`` (DNS names or IP addresses) valid from ``start_days`` to
        ``days`` from now (negative: in the past)."""
        key = _key()
        now = datetime.now(timezone.utc)
        alt: list[x509.GeneralName] = []
        for n in names:
            try:
                alt.append(x509.IPAddress(ipaddress.ip_address(n)))
            except ValueError:
                alt.append(x509.DNSName(n))
        subject = _name(names[0])
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject if self_signed else self.cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now + timedelta(days=start_days))
            .not_valid_after(now + timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .sign(key if self_signed else self.key, hashes.SHA256())
        )
        cert_file = self.folder / f"{stem}.pem"
        cert_file.write_bytes(_pem(cert) + (_pem(self.cert) if chain and not self_signed
                                            else b""))
        return Issued(cert_file, write_key(self.folder / f"{stem}.key", key), cert)


def openssl_self_signed(folder: Path, *, key: str = "ec") -> tuple[Path, Path]:
    """(certificate, key) for gw.stanion-pc.gov.uk, self-signed by the real openssl command
    (an EC P-256 key, or RSA-2048 with ``key="rsa"``)."""
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    new_key = (["-newkey", "rsa:2048"] if key == "rsa"
               else ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"])
    subprocess.run(["openssl", "req", "-x509", *new_key, "-nodes", "-days", "2",
                    "-subj", "/CN=gw.stanion-pc.gov.uk", "-keyout", str(key_file),
                    "-out", str(cert_file)], check=True, capture_output=True)
    return cert_file, key_file
