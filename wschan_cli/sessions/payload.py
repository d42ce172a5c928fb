"""Input bytes -> the message to send, written once for arguments, files, stdin lines and
streamed messages: text must be UTF-8 (else exit 2, or ``--binary``), ``--hex`` and ``--base64``
are decoded to bytes.

``StreamDecoder`` does the same chunk by chunk, in constant memory, for a message read while it
is sent (a file, all of stdin, a long stdin line); ``check_file`` runs it over a regular file
before connecting, so a bad file is refused with nothing sent.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable

#: Bytes read, and sent as one frame, at a time when a message is streamed.
CHUNK = 1 << 16


class InputError(Exception):
    """A message that cannot be sent as asked (exit 2)."""


def decode_message(raw: bytes, *, binary: bool, encoding: str, where: str) -> str | bytes:
    """Turn input bytes into the message to send; InputError says what is wrong and where."""
    if encoding == "utf-8":
        # The common case (each stdin line of a stream) in one C call, no decoder object.
        if binary:
            return raw
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            pass  # the decoder below says where
    decoder = StreamDecoder(binary=binary, encoding=encoding, where=where)
    data = decoder.feed(raw) + decoder.end()
    if binary or encoding != "utf-8":
        return data
    return data.decode("utf-8")


class StreamDecoder:
    """Decodes a message given in pieces; ``feed`` returns the bytes to send so far (UTF-8 for
    text), ``end`` the rest. Raises InputError at the first bad byte, naming its offset."""

    def __init__(self, *, binary: bool, encoding: str, where: str) -> None:
        self.binary = binary or encoding != "utf-8"
        self.encoding = encoding
        self.where = where
        self.offset = 0  # input bytes consumed before the current piece
        self.carry = b""  # hex/base64 characters waiting for the rest of their group
        self.utf8 = codecs.getincrementaldecoder("utf-8")()

    def feed(self, piece: bytes) -> bytes:
        try:
            return self._decode(piece, final=False)
        finally:
            self.offset += len(piece)

    def end(self) -> bytes:
        return self._decode(b"", final=True)

    def _decode(self, piece: bytes, *, final: bool) -> bytes:
        if self.encoding == "hex":
            return self._groups(piece, 2, final, self._hex)
        if self.encoding == "base64":
            return self._groups(piece, 4, final, self._base64)
        if not self.binary:
            try:
                self.utf8.decode(piece, final)
            except UnicodeDecodeError as exc:
                byte = self.offset + exc.start
                raise InputError(
                    f"{self.where} is not valid UTF-8 (byte {byte}); send bytes with --binary"
                ) from None
        return piece

    def _groups(
        self, piece: bytes, size: int, final: bool, decode: Callable[[bytes], bytes]
    ) -> bytes:
        # Whitespace may sit anywhere (line-wrapped hex or base64): drop it, decode whole groups.
        text = self.carry + b"".join(piece.split())
        cut = len(text) if final else len(text) - len(text) % size
        self.carry = text[cut:]
        return decode(text[:cut]) if cut else b""

    def _hex(self, text: bytes) -> bytes:
        try:
            return bytes.fromhex(text.decode("ascii"))
        except (UnicodeDecodeError, ValueError) as exc:
            detail = str(exc).replace("fromhex() arg", "input")
            raise InputError(f"{self.where} is not valid hex: {detail}") from None

    def _base64(self, text: bytes) -> bytes:
        import base64  # here: only --base64 input needs it, not the command's start-up
        import binascii

        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InputError(f"{self.where} is not valid base64: {exc}") from None


def check_file(path: str, *, binary: bool, encoding: str) -> None:
    """Decode a regular file once, in constant memory, before anything is sent: InputError
    for bad content, OSError when it cannot be read. Other files (pipes, devices) are only
    checked as they are sent."""
    import os
    import stat

    with open(path, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return
        if binary and encoding == "utf-8":
            return  # bytes as they are: nothing to check
        decoder = StreamDecoder(binary=binary, encoding=encoding, where=repr(path))
        while piece := handle.read(CHUNK):
            decoder.feed(piece)
        decoder.end()
