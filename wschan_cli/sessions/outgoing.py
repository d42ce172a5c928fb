"""The messages ``wschan send`` sends, in input order: arguments (decoded when planned), stdin
(split into messages, or all of it as one), files (each one message). Long ones are streamed.

A file, all of stdin (``--file -``), and a stdin message longer than ``reader.STREAM_AFTER``
bytes are sent as one fragmented message while they are read (``Streamed``), in constant
memory. Their content is decoded on the way (``payload.StreamDecoder``); a bad byte found after
frames went out cuts the message off (the channel fails the connection with 1011, D12) and the
run ends with exit 2.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

from .payload import InputError, StreamDecoder, decode_message
from .race import first_done
from .reader import Batch, InputReader, StreamedMessage


async def next_batch(reader: InputReader, ended: asyncio.Event) -> Batch:
    """The reader's next batch; None as well when ``ended`` is set first (the connection
    ended: nothing more can be sent)."""
    if not reader.queue.empty():
        return reader.queue.get_nowait()
    getter, _ = await first_done(reader.queue.get(), ended.wait())
    return getter.result() if getter.done() and not getter.cancelled() else None


@dataclass(frozen=True)
class Streamed:
    """A message sent while it is read: its chunks (already decoded), and its type."""

    chunks: AsyncIterator[bytes]
    text: bool


Outgoing = str | bytes | Streamed


@dataclass
class Outbox:
    """Yields the messages of ``sources`` in order; stops early when ``ended`` is set."""

    # ("message", payload) | ("stdin", None) | ("stdin-whole", None) | ("file", path)
    sources: list[tuple[str, Any]]
    binary: bool
    encoding: str
    stdin: InputReader | None
    ended: asyncio.Event

    async def __aiter__(self) -> AsyncIterator[Outgoing]:
        for kind, value in self.sources:
            if kind == "message":
                yield value
            elif kind == "file":
                try:
                    fd = os.open(value, os.O_RDONLY)
                except OSError as exc:  # checked when planned; gone or changed since
                    raise InputError(f"cannot read {value!r}: {exc.strerror or exc}") from None
                reader = InputReader(fd, whole=True, close=True)
                reader.start()
                failure = "cannot read " + repr(value)
                async for batch in self._batches(reader, repr(value), failure):
                    for message in batch:
                        yield message
            else:
                assert self.stdin is not None
                whole = kind == "stdin-whole"
                async for batch in self._batches(self.stdin, "stdin" if whole else None):
                    for message in batch:  # one async step per message, not two
                        yield message

    async def _batches(
        self, reader: InputReader, where: str | None, failure: str = "cannot read stdin"
    ) -> AsyncIterator[Iterator[Outgoing]]:
        """The batches of one reader, each as an iterator of its messages, decoded as taken;
        ``where`` names them (else "stdin message N")."""
        while (batch := await next_batch(reader, self.ended)) is not None:
            if isinstance(batch, OSError):
                raise InputError(f"{failure}: {batch}")
            yield self._messages(batch, reader, where, failure)

    def _messages(
        self,
        batch: list[bytes | StreamedMessage],
        reader: InputReader,
        where: str | None,
        failure: str,
    ) -> Iterator[Outgoing]:
        """A batch's messages, each decoded when taken: a bad one stops the run after the
        messages before it went out. Lines of text (the common case: each line of a stream)
        and plain binary lines are taken in one C call or as they are; decode_message names
        the message in its error."""
        text = self.encoding == "utf-8" and not self.binary
        raw_bytes = self.encoding == "utf-8" and self.binary
        for raw in batch:
            reader.count += 1
            if isinstance(raw, StreamedMessage):
                name = where or f"stdin message {reader.count}"
                yield Streamed(self._decoded(raw, name, failure), text=not self.binary)
                continue
            if raw_bytes:
                yield raw
                continue
            if text:
                try:
                    message: str | bytes = raw.decode()
                except UnicodeDecodeError:
                    pass
                else:
                    yield message
                    continue
            name = where or f"stdin message {reader.count}"
            yield decode_message(raw, binary=self.binary, encoding=self.encoding, where=name)

    async def _decoded(
        self, message: StreamedMessage, where: str, failure: str
    ) -> AsyncIterator[bytes]:
        decoder = StreamDecoder(binary=self.binary, encoding=self.encoding, where=where)
        try:
            async for raw in message:
                if piece := decoder.feed(raw):
                    yield piece
        except OSError as exc:
            raise InputError(f"{failure}: {exc}") from None
        if rest := decoder.end():
            yield rest
