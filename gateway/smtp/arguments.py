"""What the argument of a MAIL or RCPT command says: the address exactly as the client wrote it,
and the DSN parameters (RFC 3461) the gateway passes on."""

from __future__ import annotations

import re
from email._header_value_parser import get_addr_spec, get_angle_addr
from email.errors import HeaderParseError

__all__ = ["MAIL_DSN", "RCPT_DSN", "take_dsn", "written_address"]


def written_address(arg: str, local_part_limit: int = 0) -> tuple[str | None, str | None]:
    """(the address, the rest of the argument), for aiosmtpd's ``_getaddr``.

    The address exactly as the client wrote it: aiosmtpd's parser drops quotes that are not
    needed ("user%x"@d becomes user%x@d), and what is checked must be what is passed on.
    Unparsable addresses go through too: the handler says what is wrong with them
    (email-validator's reason), 501 5.1.7 for senders, 553 5.1.3 for recipients."""
    address, rest = _parsed(arg, local_part_limit)
    text = arg.strip()
    bracketed = text.startswith("<")
    end = _address_end(text, 1 if bracketed else 0, ">" if bracketed else " ")
    raw = text[1:end] if bracketed else text[:end]
    after = text[end + 1:] if bracketed else text[end:]
    if address is not None:
        return raw or "<>", rest
    return raw or "<invalid>", after.strip()


def _parsed(arg: str, local_part_limit: int) -> tuple[str | None, str | None]:
    # aiosmtpd's _getaddr, without the typing class it defines anew on every call (a
    # hundredth of the gateway's time a message).
    if not arg:
        return "", ""
    try:
        parse = get_angle_addr if arg.lstrip().startswith("<") else get_addr_spec
        address, rest = parse(arg)
    except HeaderParseError:
        return None, None
    addr: str = address.addr_spec
    if local_part_limit and len(addr.rpartition("@")[0]) > local_part_limit:
        return None, None
    return addr, rest


MAIL_DSN = ("RET", "ENVID")
RCPT_DSN = ("NOTIFY", "ORCPT")
_XTEXT = re.compile(r"^(?:[\x21-\x2a\x2c-\x3c\x3e-\x7e]|\+[0-9A-F]{2})+$")


def _dsn_problem(name: str, value: str) -> str | None:
    if name == "RET" and value.upper() not in ("FULL", "HDRS"):
        return "RET= takes FULL or HDRS"
    if name == "NOTIFY":
        words = value.upper().split(",")
        if not (words == ["NEVER"] or (words and set(words) <= {"SUCCESS", "FAILURE", "DELAY"})):
            return "NOTIFY= takes NEVER, or SUCCESS, FAILURE and DELAY"
    if name == "ORCPT" and (";" not in value or not _XTEXT.match(value.split(";", 1)[1])):
        return "ORCPT= takes an address type and an xtext address, e.g. rfc822;user@example"
    if name == "ENVID" and (len(value) > 100 or not _XTEXT.match(value)):
        return "ENVID= takes up to 100 characters of xtext"
    return None


def take_dsn(arg: str, names: tuple[str, ...]) -> tuple[str, tuple[str, ...], str | None]:
    """(the argument without the DSN parameters, those parameters as written, a problem)."""
    text = arg.strip()
    at = text.find("<")
    end = _address_end(text, at + 1, ">") + 1 if at >= 0 else len(text.split(" ", 1)[0])
    head, params = text[:end], text[end:].split()
    kept, found = [], []
    for p in params:
        name, _, value = p.partition("=")
        if name.upper() in names:
            problem = _dsn_problem(name.upper(), value)
            if problem:
                return arg, (), problem
            found.append(f"{name.upper()}={value}")
        else:
            kept.append(p)
    return " ".join([head, *kept]), tuple(found), None


def _address_end(text: str, start: int, stop: str) -> int:
    """Where an address written from ``start`` ends: at ``stop`` outside quotes (a quoted local
    part may hold ">" or spaces), or at the end of the text."""
    quoted = escaped = False
    for i in range(start, len(text)):
        c = text[i]
        if escaped:
            escaped = False
        elif c == "\\" and quoted:
            escaped = True
        elif c == '"':
            quoted = not quoted
        elif c == stop and not quoted:
            return i
    return len(text)
