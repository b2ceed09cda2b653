"""Which attachments are dangerous: pure rules over file names and file content.

Nothing here opens a socket or runs a program; archives are read with :mod:`zipfile` in memory,
within limits on size, number of files and depth, and content types are recognised by their bytes
with the ``filetype`` library, never by the name alone.

Policy: Stanion "Email" (attachments are opened only from trusted sources; if in any doubt, do not
open) and Kirkham rule 14 (no attachment is opened unless virus-checked and from a recognised
source).
"""

from __future__ import annotations

import email.policy
import io
import unicodedata
import zipfile
from dataclasses import dataclass, field
from email.message import EmailMessage, Message
from email.parser import BytesParser

import filetype

from gateway.mime.limits import Complexity, MimeLimits, measure, too_complex
from gateway.mime.payload import decoded_payload
from gateway.rules.wording import display_name

__all__ = [
    "AttachmentRules",
    "Danger",
    "DEFAULT_BLOCKED",
    "DEFAULT_MACRO",
    "check_name",
    "check_content",
    "content_family",
    "extension_of",
    "inspect_file",
    "inspect_message",
]

DEFAULT_BLOCKED = (
    # Windows programs, installers and libraries
    "exe", "com", "scr", "pif", "cpl", "dll", "sys", "drv", "ocx", "msi", "msp", "mst", "msix",
    "msixbundle", "appx", "appxbundle", "appinstaller", "application", "gadget", "xll", "xbap",
    # scripts and script hosts
    "bat", "cmd", "js", "jse", "vb", "vbs", "vbe", "wsf", "wsh", "ws", "wsc", "sct", "hta", "ps1",
    "ps1xml", "ps2", "ps2xml", "psc1", "psc2", "psm1", "msh", "msh1", "msh2", "mshxml",
    "msh1xml", "msh2xml", "jar", "jnlp", "py", "pyw", "sh", "reg", "inf", "ins", "isp",
    # shortcuts, disk images and other wrappers used to smuggle programs past filters
    "lnk", "url", "scf", "shb", "shs", "iso", "img", "vhd", "vhdx", "chm", "hlp", "msc", "mde",
    "ade", "adp", "diagcab", "settingcontent-ms", "library-ms", "search-ms", "appref-ms",
)
DEFAULT_MACRO = ("docm", "dotm", "xlsm", "xltm", "xlam", "xlsb", "pptm", "potm", "ppsm", "ppam",
                 "sldm")

# Extensions a disguised program pretends to have in front of its real one ("invoice.pdf.exe").
_LOOKALIKES = frozenset({
    "pdf", "doc", "docx", "xls", "xlsx", "ppt", "pptx", "odt", "ods", "odp", "rtf", "txt", "csv",
    "jpg", "jpeg", "png", "gif", "bmp", "tif", "tiff", "htm", "html", "mp3", "mp4", "wav", "avi",
    "mov", "zip", "rar", "eml", "msg",
})
# Characters that reorder or hide text: "invoice\u202egpj.exe" shows as "invoiceexe.jpg".
_HIDDEN = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")

OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
HEAD = 8192  # bytes enough to recognise any type filetype knows

# What content each declared extension may have. Only types whose content can be recognised
# reliably are listed; anything else is judged by its name alone.
_OOXML = ("docx", "dotx", "xlsx", "xltx", "pptx", "potx", "ppsx", "odt", "ods", "odp", "odg",
          "docm", "dotm", "xlsm", "xltm", "pptm", "potm", "ppsm")
_ALLOWED_CONTENT: dict[str, frozenset[str]] = {
    "pdf": frozenset({"pdf"}),
    "doc": frozenset({"office-ole", "rtf"}),
    "dot": frozenset({"office-ole", "rtf"}),
    "xls": frozenset({"office-ole"}),
    "ppt": frozenset({"office-ole"}),
    "pps": frozenset({"office-ole"}),
    "rtf": frozenset({"rtf"}),
    "zip": frozenset({"zip", "office-zip"}),
    "gz": frozenset({"gz"}),
    "7z": frozenset({"7z"}),
    "rar": frozenset({"rar"}),
    **{ext: frozenset({"office-zip"}) for ext in _OOXML},
    **{ext: frozenset({"image"}) for ext in
       ("jpg", "jpeg", "jpe", "png", "gif", "bmp", "tif", "tiff", "webp", "heic")},
}
_DECLARED_TYPES = {
    "application/pdf": "pdf", "application/msword": "doc", "application/vnd.ms-excel": "xls",
    "application/vnd.ms-powerpoint": "ppt", "application/rtf": "rtf", "application/zip": "zip",
    "application/x-zip-compressed": "zip", "image/jpeg": "jpg", "image/png": "png",
    "image/gif": "gif",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": "pptx",
}
_FAMILY_WORDS = {
    "program": "a program", "office-ole": "an older Office document", "rtf": "an RTF document",
    "office-zip": "an Office document", "zip": "a ZIP archive", "pdf": "a PDF document",
    "image": "a picture", "gz": "a gzip archive", "7z": "a 7-Zip archive", "rar": "a RAR archive",
}


@dataclass(frozen=True)
class AttachmentRules:
    blocked_extensions: frozenset[str] = frozenset(DEFAULT_BLOCKED)
    macro_extensions: frozenset[str] = frozenset(DEFAULT_MACRO)
    double_extensions: bool = True
    check_content: bool = True
    look_inside_archives: bool = True
    block_encrypted_archives: bool = True  # applies to mail from outside only
    max_archive_size: int = 25 * 1024 * 1024
    max_archive_entries: int = 1000
    max_depth: int = 3


@dataclass(frozen=True)
class Danger:
    rule: str  # blocked-type | macro | double-extension | disguised-name | type-mismatch |
    #            encrypted-archive | archive-limits | damaged-archive
    name: str  # as shown to people, e.g. "run.exe (inside invoice.zip)"
    text: str  # the whole sentence, naming the file

    @property
    def finding_code(self) -> str:
        return f"attachment.{self.rule}"


# --------------------------------------------------------------------------- names

def _base(name: str) -> str:
    name = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    # Windows drops trailing dots and spaces: "run.exe. " opens as "run.exe".
    return name.strip().rstrip(". ").strip()


def extension_of(name: str) -> str:
    """``"Invoice.PDF.exe "`` -> ``"exe"``; ``""`` when the name has none."""
    base = "".join(c for c in _base(name) if c not in _HIDDEN)
    if "." not in base.lstrip("."):
        return ""
    return base.rsplit(".", 1)[1].strip().lower()


def check_name(name: str, rules: AttachmentRules, shown: str | None = None) -> Danger | None:
    """The first name rule ``name`` breaks, or None. ``shown`` is how to call it in the text."""
    shown = shown or display_name(name)
    base = _base(name)
    ext = extension_of(name)
    if rules.double_extensions:
        if any(c in _HIDDEN for c in base):
            return Danger("disguised-name", shown,
                          f"the attachment {shown} has hidden characters in its name that "
                          "disguise its real file type")
        parts = base.lower().split(".")
        if (len(parts) >= 3 and parts[-2].strip() in _LOOKALIKES
                and ext in rules.blocked_extensions | rules.macro_extensions):
            return Danger("double-extension", shown,
                          f"the attachment {shown} has a double extension: it looks like a "
                          f".{parts[-2].strip()} file but is really a .{ext} file")
    if ext and ext in rules.blocked_extensions:
        return Danger("blocked-type", shown,
                      f"the attachment {shown} is a .{ext} file, a program or script type "
                      "that is blocked")
    if ext and ext in rules.macro_extensions:
        return Danger("macro", shown,
                      f"the attachment {shown} is an Office file with macros (.{ext})")
    return None


# --------------------------------------------------------------------------- content

def _is_zip(data: bytes) -> bool:
    return data[:4] in ZIP_MAGICS


def _zip_names(data: bytes) -> list[str] | None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return zf.namelist()
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError):
        return None


def content_family(data: bytes) -> str | None:
    """What the bytes are, as a family: "program", "pdf", "zip", "office-zip", "office-ole",
    "rtf", "image", "gz", "7z", "rar", another filetype extension, or None if unknown."""
    if data[:2] == b"MZ" or data[:4] == b"\x7fELF":
        return "program"
    if data.startswith(OLE2_MAGIC):
        return "office-ole"
    if data.lstrip()[:5] == b"{\\rtf":
        return "rtf"
    if _is_zip(data):
        names = _zip_names(data)
        if names is not None and ("[Content_Types].xml" in names or "mimetype" in names):
            return "office-zip"
        return "zip"
    kind = filetype.guess(data[:HEAD])
    if kind is None:
        return None
    if kind.extension in ("exe", "elf"):
        return "program"
    if kind.mime.startswith("image/"):
        return "image"
    return str(kind.extension)


def check_content(name: str, content_type: str, data: bytes, rules: AttachmentRules,
                  shown: str | None = None) -> Danger | None:
    """A declared type (file name, else Content-Type) that the content contradicts, a program
    under any other name, or macros in an Office file named as one without."""
    shown = shown or display_name(name) or "(unnamed part)"
    ext = extension_of(name) if name else ""
    declared = ext if ext in _ALLOWED_CONTENT else _DECLARED_TYPES.get(content_type.lower(), "")
    family = content_family(data)
    if family == "program" and ext not in rules.blocked_extensions:
        return Danger("type-mismatch", shown,
                      f"the attachment {shown} is really a program, whatever its name or type "
                      "says")
    if declared and family and family not in _ALLOWED_CONTENT[declared]:
        said = f"named .{ext}" if declared == ext else f"declared as {content_type}"
        return Danger("type-mismatch", shown,
                      f"the attachment {shown} is {said} but its content is "
                      f"{_FAMILY_WORDS.get(family, 'a .' + family + ' file')}")
    if family == "office-zip" and ext not in rules.macro_extensions:
        names = _zip_names(data) or []
        if any(n.lower().endswith("vbaproject.bin") for n in names):
            return Danger("macro", shown,
                          f"the attachment {shown} is an Office file with macros, although "
                          "its name does not say so")
    return None


# --------------------------------------------------------------------------- walking

@dataclass
class _Walk:
    rules: AttachmentRules
    from_outside: bool
    budget: int  # bytes of archive content we may still decompress
    dangers: list[Danger] = field(default_factory=list)
    # the attached messages (.eml) measured so far, added up: together they may be no more
    # complex than one message (a zip can hold a thousand of them)
    attached: Complexity = field(default_factory=lambda: Complexity(0, 0))
    attached_over: bool = False  # the attached messages together are past the limits

    def add(self, danger: Danger | None) -> bool:
        if danger is not None:
            self.dangers.append(danger)
        return danger is not None

    def file(self, name: str, content_type: str, data: bytes, shown: str, depth: int,
             top: str = "") -> None:
        """``shown``: how to name this file; ``top``: the attachment it came out of, if any."""
        rules = self.rules
        flagged = bool(name) and self.add(check_name(name, rules, shown))
        if rules.check_content and not flagged:
            flagged = self.add(check_content(name, content_type, data, rules, shown))
        if rules.look_inside_archives and _is_zip(data) and content_family(data) == "zip":
            self.archive(shown, data, depth + 1, top or shown)
        elif extension_of(name) == "eml" and depth < rules.max_depth:
            # Measured as the message itself was before it is parsed (a forwarded message
            # can be built to take the parser minutes).
            if self.attached_over:
                return  # said once, for the first one over
            one = measure(data, _LIMITS)
            self.attached = was = self.attached.plus(one)
            if why := too_complex(one, _LIMITS):
                self.add(Danger("archive-limits", shown,
                                f"the attached message {shown} cannot be checked: {why}"))
            elif why := too_complex(was, _LIMITS):
                self.attached_over = True
                self.add(Danger("archive-limits", shown,
                                f"the attached messages, {shown} and those after it, cannot be "
                                f"checked together: {why.replace('it has', 'they have')}"))
            else:
                self.message(_parse(data), depth + 1)

    def archive(self, shown: str, data: bytes, depth: int, top: str) -> None:
        rules = self.rules
        if depth > rules.max_depth:
            self.add(Danger("archive-limits", shown,
                            f"the attachment {shown} holds archives nested more than "
                            f"{rules.max_depth} deep, too deep to be checked"))
            return
        if len(data) > rules.max_archive_size:
            self.add(Danger("archive-limits", shown,
                            f"the attachment {shown} is an archive too large to be checked"))
            return
        try:
            zf = zipfile.ZipFile(io.BytesIO(data))
            infos = zf.infolist()
        except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError):
            self.add(Danger("damaged-archive", shown,
                            f"the attachment {shown} is a damaged archive that cannot be "
                            "checked"))
            return
        with zf:
            files = [i for i in infos if not i.is_dir()]
            if len(files) > rules.max_archive_entries:
                self.add(Danger("archive-limits", shown,
                                f"the attachment {shown} is an archive of more than "
                                f"{rules.max_archive_entries} files, too many to be checked"))
                return
            encrypted = [i for i in files if i.flag_bits & 0x1]
            if encrypted and self.from_outside and rules.block_encrypted_archives:
                self.add(Danger("encrypted-archive", shown,
                                f"the attachment {shown} is a password-protected archive, "
                                "which cannot be checked for viruses"))
            for info in files:
                inner = f"{display_name(info.filename)} (inside {top})"
                if self.add(check_name(info.filename, rules, inner)) or info in encrypted:
                    continue
                want = info.file_size if info.file_size <= rules.max_archive_size else HEAD
                if want > self.budget:
                    self.add(Danger("archive-limits", shown,
                                    f"the attachment {shown} unpacks to more data than can be "
                                    "checked"))
                    return
                try:
                    with zf.open(info) as member:
                        content = member.read(want)
                except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, EOFError):
                    self.add(Danger("damaged-archive", inner,
                                    f"the attachment {inner} cannot be unpacked to be checked"))
                    continue
                self.budget -= len(content)
                if len(content) < info.file_size and _is_zip(content):
                    self.add(Danger("archive-limits", inner,
                                    f"the attachment {inner} is an archive too large to be "
                                    "checked"))
                    continue
                self.file(info.filename, "application/octet-stream", content, inner, depth,
                          top)

    def message(self, msg: Message, depth: int) -> None:
        for part in msg.walk():
            if part.is_multipart():
                continue
            name = part.get_filename() or ""
            if not name and part.get_content_maintype() == "text":
                continue  # the message text itself
            data = decoded_payload(part) or b""
            shown = display_name(name) or f"(unnamed {part.get_content_type()} part)"
            self.file(name, part.get_content_type(), data, shown, depth)


_LIMITS = MimeLimits()


def _parse(data: bytes) -> EmailMessage:
    msg = BytesParser(policy=email.policy.SMTP).parsebytes(data)
    assert isinstance(msg, EmailMessage)
    return msg


def inspect_file(name: str, data: bytes, rules: AttachmentRules, *, from_outside: bool,
                 content_type: str = "application/octet-stream") -> list[Danger]:
    """Every danger in one attachment (looking inside archives)."""
    walk = _Walk(rules, from_outside, budget=rules.max_archive_size * 4)
    walk.file(name, content_type, data, display_name(name) or "(unnamed part)", 0)
    return walk.dangers


def inspect_message(msg: Message, rules: AttachmentRules, *, from_outside: bool
                    ) -> list[Danger]:
    """Every danger in a message's attachments, forwarded messages and archives included."""
    walk = _Walk(rules, from_outside, budget=rules.max_archive_size * 4)
    walk.message(msg, 0)
    return walk.dangers
