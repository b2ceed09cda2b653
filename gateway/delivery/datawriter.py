"""The DATA command to the next hop, written from the message's own buffer.

aiosmtplib's ``SMTP.data()`` makes the line endings CRLF with a regular expression over the
whole message, dot-stuffs it with another, appends the final dot (a third copy) and writes it all
at once (a fourth, in the transport's buffer): about five copies of a 20 MiB message. Ours sends
DATA through the client's connection, then the message (already CRLF, see
``gateway/smtp/received.py``) a 64 KiB piece at a time, dot-stuffed as it goes and waiting for
the socket to drain after each, then ``.``, and reads the reply with the client's reply reader.
Small pieces (the gateway's header fields on top, the final dot) go out with their neighbours:
a short message is one write, not one per piece.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import aiosmtplib
from aiosmtplib import SMTPDataError, SMTPReadTimeoutError, SMTPResponse, SMTPServerDisconnected
from aiosmtplib.protocol import SMTPProtocol

from gateway.content import CHUNK, Content

__all__ = ["batched", "dot_stuffed", "send_data"]


def dot_stuffed(content: Content, size: int = CHUNK) -> Iterator[bytes]:
    """The message as DATA carries it (RFC 5321 4.5.2): a "." put before every line that
    starts with one, a CRLF after a last line without one, then the final ``.`` CRLF; in
    pieces of about ``size`` bytes, so only one piece is ever copied."""
    line_start = True  # the next byte starts a line
    for view in content.chunks(size):
        chunk = bytes(view).replace(b"\n.", b"\n..")
        if line_start and chunk.startswith(b"."):
            chunk = b"." + chunk
        if chunk:
            line_start = chunk.endswith(b"\n")
            yield chunk
    yield b".\r\n" if line_start else b"\r\n.\r\n"


def batched(pieces: Iterator[bytes], size: int = CHUNK) -> Iterator[bytes]:
    """``pieces`` joined into writes of about ``size`` bytes (a piece is never split)."""
    batch: list[bytes] = []
    held = 0
    for piece in pieces:
        batch.append(piece)
        held += len(piece)
        if held >= size:
            yield batch[0] if len(batch) == 1 else b"".join(batch)
            batch, held = [], 0
    if batch:
        yield b"".join(batch)


async def send_data(client: aiosmtplib.SMTP, content: Content, wait: float) -> SMTPResponse:
    """DATA, the message and its final dot; the next hop's answer. ``wait`` bounds each wait
    in seconds: for the 354, for room to write the next chunk, and for the final reply. Raises as
    ``SMTP.data()`` does (``SMTPDataError`` for a refusal); on a lost connection or a timeout
    the client is closed first, as aiosmtplib's own commands do."""
    protocol = client.protocol
    if protocol is None or protocol._command_lock is None:
        raise SMTPServerDisconnected("Connection lost")
    try:
        async with protocol._command_lock:
            protocol._response_pending = True
            protocol.write(b"DATA\r\n")
            start = await protocol.read_response(timeout=wait)
            if start.code != 354:
                raise SMTPDataError(start.code, start.message)
            protocol._response_pending = True  # an early refusal is kept, not dropped
            try:
                for chunk in batched(dot_stuffed(content)):
                    protocol.write(chunk)
                    async with asyncio.timeout(wait):
                        await protocol._drain_helper()
            except TimeoutError as e:
                raise SMTPReadTimeoutError("Timed out writing the message") from e
            except (ConnectionError, SMTPServerDisconnected) as e:
                # A next hop that refused the message before its end and hung up: its words,
                # not "unreachable", so a permanent refusal is not retried.
                early = _answered(protocol)
                if early is None or early.code == 250:
                    raise SMTPServerDisconnected(str(e) or "Connection lost") from e
                raise SMTPDataError(early.code, early.message) from e
            response = await protocol.read_response(timeout=wait)
            if response.code != 250:
                raise SMTPDataError(response.code, response.message)
            return response
    except (SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError):
        client.close()
        raise


def _answered(protocol: SMTPProtocol) -> SMTPResponse | None:
    """The reply the next hop already gave, if any."""
    waiter = protocol._response_waiter
    if waiter is None or not waiter.done() or waiter.cancelled() or waiter.exception():
        return None
    return waiter.result()
