"""Real files for the antivirus and attachment tests, made with the libraries and tools that make
such files for real (pypdf, python-docx, openpyxl, Info-ZIP's zip) or taken from Debian's
clamav-testfiles."""

from __future__ import annotations

import io
import struct
import subprocess
import zipfile
import zlib
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

TESTFILES = Path("/usr/share/clamav-testfiles")
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


def clam_exe() -> bytes:
    """A real Windows PE program (harmless; ClamAV's test file)."""
    return (TESTFILES / "clam.exe").read_bytes()


def pdf() -> bytes:
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def docx(text: str = "Minutes of the meeting") -> bytes:
    import docx as python_docx

    document = python_docx.Document()
    document.add_paragraph(text)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def with_macros(ooxml: bytes) -> bytes:
    """The same Word package with a VBA project inside, as Word writes a .docm."""
    src = zipfile.ZipFile(io.BytesIO(ooxml))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "[Content_Types].xml":
                data = data.replace(
                    b"application/vnd.openxmlformats-officedocument.wordprocessingml."
                    b"document.main+xml",
                    b"application/vnd.ms-word.document.macroEnabled.main+xml")
            dst.writestr(info, data)
        dst.writestr("word/vbaProject.bin", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504))
    return out.getvalue()


def xlsx() -> bytes:
    import openpyxl

    wb = openpyxl.Workbook()
    wb.active["A1"] = "Budget"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\0\xff\0\0")) + chunk(b"IEND", b""))


def zip_of(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return out.getvalue()


def encrypted_zip(workdir: Path, files: dict[str, bytes], password: str = "s3cret") -> bytes:
    """A password-protected ZIP made by Info-ZIP's zip, as a sender's computer makes it."""
    src = workdir / "zip-src"
    src.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (src / name).write_bytes(data)
    target = workdir / "locked.zip"
    target.unlink(missing_ok=True)
    subprocess.run(["zip", "-q", "-P", password, str(target), *files], cwd=src, check=True)
    return target.read_bytes()


def nested_zip(levels: int, inner: bytes = b"hello") -> bytes:
    data = inner
    for i in range(levels):
        data = zip_of({f"level{i}.zip" if i else "a.txt": data})
    return data


def message(*attachments: tuple[str, str, bytes], body: str = "Please see attached.\n",
            sender: str = "resident@example.org", to: str = "clerk@stanion-pc.gov.uk",
            subject: str = "Documents") -> bytes:
    """A real MIME message (base64 attachments), CRLF line endings."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(domain="example.org")
    msg["Date"] = "Mon, 23 Nov 2026 10:00:00 +0000"
    msg.set_content(body)
    for name, ctype, data in attachments:
        maintype, subtype = ctype.split("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


def forwarded(inner: bytes, *, sender: str = "friend@example.net",
              to: str = "clerk@stanion-pc.gov.uk") -> bytes:
    """``inner`` forwarded as an attachment (message/rfc822)."""
    from email import message_from_bytes, policy

    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = "Fwd: Documents"
    msg["Message-ID"] = make_msgid(domain="example.net")
    msg.set_content("Forwarding this, see below.\n")
    msg.add_attachment(message_from_bytes(inner, policy=policy.SMTP))
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))
