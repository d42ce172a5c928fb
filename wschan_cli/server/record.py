"""What the embedded server received, kept so that tests can assert on what a client really put on
the wire, and the waits that let a test block until it has arrived.

The counts are always kept; the lists only with ``record=True``, what a test asks for. ``wschan
serve`` passes ``record=False`` and ``--exec`` never records, so a long-running server holds
flat memory however much it echoes and however many clients come (issue 13, item 4).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from websockets.http11 import Request

__all__ = ["ServerRecord"]

logger = logging.getLogger("wschan_cli.server")


class ServerRecord:
    """The record of one server (in order, across connections), updated from the server's loop.

    * ``received``: every message received, ``str`` for text and ``bytes`` for binary;
    * ``pongs``: payload of every Pong received;
    * ``connections``: number of accepted upgrades (counted before the 101 is sent);
    * ``close_codes``: for each ended accepted connection, the close code the client
      sent (1005 for a Close frame without a code), or ``None`` without a Close frame;
    * ``request_headers``: headers of every handshake request, rejected ones too,
      as a dict with lower-case names (repeated headers joined with ", ");
    * ``request_paths``: the request target (path and query) of every handshake request;
    * ``subprotocols``: the subprotocol selected for each accepted connection.

    With ``record=False`` those lists stay empty; the counts ``connections``, ``messages``
    (messages received) and ``ended`` (accepted connections ended) are kept either way.
    """

    def __init__(self, record: bool) -> None:
        self.record = record
        self.messages = 0
        self.ended = 0
        self.received: list[str | bytes] = []
        self.pongs: list[bytes] = []
        self.connections = 0
        self.close_codes: list[int | None] = []
        self.request_headers: list[dict[str, str]] = []
        self.request_paths: list[str] = []
        self.subprotocols: list[str | None] = []
        # Set whenever a record changes while someone waits; waiters re-check their condition.
        self._changed = asyncio.Event()
        self._waiting = 0  # tasks in wait_until: with none, a record wakes nobody

    @property
    def subprotocol(self) -> str | None:
        """The subprotocol selected for the most recent accepted connection."""
        return self.subprotocols[-1] if self.subprotocols else None

    # -- recording ------------------------------------------------------------------

    def record_request(self, request: Request) -> None:
        """A handshake request, accepted or not."""
        if self.record:
            headers: dict[str, str] = {}
            for name, value in request.headers.raw_items():
                key = name.lower()
                headers[key] = f"{headers[key]}, {value}" if key in headers else value
            self.request_headers.append(headers)
            self.request_paths.append(request.path)
        self._notify()

    def record_accepted(self, subprotocol: str | None) -> None:
        """An upgrade about to be answered with 101."""
        self.connections += 1
        if self.record:
            self.subprotocols.append(subprotocol)
        self._notify()

    def record_message(self, message: str | bytes) -> None:
        # Once per echoed message: what _notify does, inlined.
        self.messages += 1
        if self.record:
            self.received.append(message)
        if self._waiting:
            self._changed.set()

    def record_pong(self, payload: bytes) -> None:
        if self.record:
            self.pongs.append(payload)
        logger.info("pong received: %r", payload)
        self._notify()

    def record_end(self, code: int | None) -> None:
        self.ended += 1
        if self.record:
            self.close_codes.append(code)
        logger.info("connection ended; close code from client: %s", code)
        self._notify()

    # -- waiting for records --------------------------------------------------------

    def _notify(self) -> None:
        # Nobody waiting, nobody to wake: a waiter checks its condition before it waits, and
        # the loop runs nothing between that check and its wait.
        if self._waiting:
            self._changed.set()

    async def wait_until(self, predicate: Callable[[], bool], timeout: float | None = 5.0) -> None:
        """Wait until ``predicate()`` is true; it is re-checked whenever a record changes.

        Raises TimeoutError after ``timeout`` seconds (``None``: no limit).
        """
        async with asyncio.timeout(timeout):
            while not predicate():
                # Safe without a lock: nothing runs between the check and clear().
                self._changed.clear()
                self._waiting += 1
                try:
                    await self._changed.wait()
                finally:
                    self._waiting -= 1

    async def wait_connections(self, n: int, timeout: float | None = 5.0) -> None:
        """Wait until at least ``n`` upgrades were accepted (TimeoutError after ``timeout``)."""
        await self.wait_until(lambda: self.connections >= n, timeout)

    async def wait_ended(self, n: int, timeout: float | None = 5.0) -> None:
        """Wait until at least ``n`` accepted connections ended (TimeoutError after ``timeout``)."""
        await self.wait_until(lambda: self.ended >= n, timeout)

    async def wait_received(self, n: int, timeout: float | None = 5.0) -> None:
        """Wait until at least ``n`` messages were received in total."""
        await self.wait_until(lambda: self.messages >= n, timeout)
