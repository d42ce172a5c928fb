"""One connection after another: the session's current ``Channel``, the ``--init`` messages
sent after every (re)connect, and ``--reconnect``.

A ``Channel`` is terminal after an error close (its state stays ERROR), so reconnecting means a
new ``Channel``; every observer (toolbar, -v) is subscribed to each new one. ``run()`` is the
supervisor: it returns the exit status once the link is over, that is when the user ended it
(``close``), the server closed cleanly, or a close/failed connect happened without
``--reconnect`` (or with its tries used up).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from wschan_cli.channel import (
    Channel,
    ChannelClosed,
    ChannelDisposed,
    ChannelError,
    CloseInfo,
    ConnectError,
    Event,
    HandshakeError,
    HandshakeRejected,
    Message,
    Subscriber,
    What,
    WriteTimeout,
)
from wschan_cli.exitcodes import ExitStatus, status_for
from wschan_cli.render.closecodes import describe_close
from wschan_cli.render.diagnostics import Diagnostics
from wschan_cli.settings import ConnectionSettings

from .backoff import Backoff
from .outgoing import Streamed
from .race import first_done
from .retry import classify

#: A connection that stayed up this long resets the backoff (delays and tries start over).
STABLE_AFTER = 10.0


@dataclass
class LinkConfig:
    url: str
    connection: ConnectionSettings
    init: tuple[str, ...] = ()
    reconnect: bool = False
    reconnect_delay: float = 1.0
    reconnect_max_delay: float = 30.0
    reconnect_tries: int = 10


@dataclass
class Link:
    """The supervisor of the session's connections (see the module docstring)."""

    config: LinkConfig
    process: Callable[[Message], None]
    notify: Callable[[str], None]  # one line for the user (stderr / above the prompt)
    observers: list[Subscriber] = field(default_factory=list)
    on_change: Callable[[], None] = lambda: None  # the reconnect status changed (toolbar)
    # the upgrade was refused: its status and headers (for -i)
    on_rejected: Callable[[int, tuple[tuple[str, str], ...]], None] = lambda _s, _h: None
    on_close: Callable[[CloseInfo], None] = lambda _info: None  # each connection's close

    ch: Channel | None = None
    connections: int = 0  # connections that were opened (init sent)
    status_line: str = ""  # reconnect status for the toolbar ("" when connected)
    final_message: str | None = None
    stopping: bool = False
    _ready: asyncio.Event = field(default_factory=asyncio.Event)
    _ended: asyncio.Event = field(default_factory=asyncio.Event)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _stop_done: asyncio.Event = field(default_factory=asyncio.Event)
    _closed: asyncio.Future[CloseInfo] | None = None
    _stop_status: int | None = None
    _attempted: asyncio.Event = field(default_factory=asyncio.Event)
    failure: ChannelError | None = None  # the last failed connect

    @classmethod
    def reporting_to(
        cls,
        diag: Diagnostics,
        config: LinkConfig,
        process: Callable[[Message], None],
        on_close: Callable[[CloseInfo], None] = lambda _info: None,
    ) -> Link:
        """A link whose notices, refused upgrades and (with -i/-v) channel events go to
        ``diag``: how the bridges, off a terminal, report."""
        return cls(
            config,
            process=process,
            notify=diag.note,
            observers=[diag] if diag.watches else [],
            on_rejected=diag.response,
            on_close=on_close,
        )

    # ------------------------------------------------------------------ supervisor

    async def run(self) -> int:
        """Connect, reconnect as configured; the exit status when the link is over."""
        cfg = self.config
        loop = asyncio.get_running_loop()
        backoff = Backoff(cfg.reconnect_delay, cfg.reconnect_max_delay, cfg.reconnect_tries)
        try:
            while True:
                if self.stopping:
                    return self._stopped()
                closed: asyncio.Future[CloseInfo] = loop.create_future()
                self._closed = closed

                def on_close(info: CloseInfo, closed: asyncio.Future[CloseInfo] = closed) -> None:
                    if not closed.done():
                        closed.set_result(info)
                        self.on_close(info)

                ch = Channel(
                    cfg.url,
                    options=cfg.connection.channel_options(),
                    process=self.process,
                    on_close=on_close,
                )
                for observer in self.observers:
                    ch.subscribe(observer)
                self.ch = ch
                if backoff.attempt == 0:
                    self.status_line = "connecting"
                    self.on_change()
                try:
                    await ch.open()
                    for message in cfg.init:
                        await ch.send(message)
                except (ConnectError, HandshakeError) as exc:
                    await self._dispose(ch)
                    self.failure = exc
                    if isinstance(exc, HandshakeRejected):
                        self.on_rejected(exc.status, exc.headers)
                    self._attempted.set()
                    if self.stopping:
                        return self._stopped()
                    if not cfg.reconnect:
                        return self._end(status_for(exc), str(exc))
                    verdict = classify(exc)
                    if verdict.permanent:
                        return self._end(status_for(exc), f"{exc} (not retried: permanent)")
                    if backoff.exhausted:
                        return self._end(status_for(exc), str(exc), gave_up=True)
                    await self._pause(backoff, str(exc), verdict.retry_after)
                    continue
                except (ChannelClosed, ChannelDisposed, WriteTimeout):
                    pass  # closed while sending --init (or aborted, D8): the close says how
                opened_at = loop.time()
                self.connections += 1
                self._attempted.set()
                self.status_line = ""
                self.on_change()
                if not closed.done():
                    self._ready.set()
                info = await closed
                self._ready.clear()
                if self.stopping:
                    await self._stop_done.wait()
                    await self._dispose(ch)
                    return self._stopped()
                if info.clean:
                    await self._dispose(ch)
                    return self._end(ExitStatus.OK, self._describe(info))
                if loop.time() - opened_at >= STABLE_AFTER:
                    backoff.reset()
                await self._dispose(ch)
                if not cfg.reconnect or backoff.exhausted:
                    return self._end(
                        ExitStatus.ABNORMAL, self._describe(info), gave_up=cfg.reconnect
                    )
                await self._pause(backoff, self._describe(info))
        finally:
            self._ready.clear()
            self._ended.set()
            self.on_change()

    def _describe(self, info: CloseInfo) -> str:
        conn = self.config.connection
        return describe_close(
            info, close_timeout=conn.close_timeout, write_timeout=conn.write_timeout
        )

    def _stopped(self) -> int:
        """The status once the user ended the link: as the close went, or, when no
        connection was ever made, the failure that kept it from being made (3 or 4)."""
        if self.connections == 0 and self.failure is not None:
            return self._end(status_for(self.failure), str(self.failure))
        return self._stop_status if self._stop_status is not None else ExitStatus.OK

    def _end(self, status: int, message: str, *, gave_up: bool = False) -> int:
        if gave_up:
            message += f" (gave up after {self.config.reconnect_tries} reconnect attempts)"
        self.final_message = message
        return status

    async def _pause(self, backoff: Backoff, why: str, asked: float | None = None) -> None:
        """Wait before the next attempt: the backoff's delay, or what the server asked for
        (Retry-After), at most --reconnect-max-delay."""
        delay = backoff.next_delay()
        if asked is not None:
            delay = min(asked, self.config.reconnect_max_delay)
        tries = f"/{backoff.tries}" if backoff.tries else ""
        self.status_line = f"reconnect {backoff.attempt}{tries} in {delay:.2f}s"
        self.notify(f"{why}; reconnecting in {delay:.2f}s (attempt {backoff.attempt}{tries})")
        self.on_change()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self._stop.wait()  # a /quit or Ctrl-D while waiting ends the wait
        self.status_line = f"reconnecting (attempt {backoff.attempt}{tries})"
        self.on_change()

    @staticmethod
    async def _dispose(ch: Channel) -> None:
        with contextlib.suppress(ChannelError):
            await ch.deinit(abrupt=True)

    # ------------------------------------------------------------------ used by the views

    @property
    def ended(self) -> bool:
        return self._ended.is_set()

    async def wait_ended(self) -> None:
        await self._ended.wait()

    async def wait_attempted(self) -> None:
        """Until the first connect attempt succeeded or failed (or the link ended)."""
        await first_done(self._attempted.wait(), self._ended.wait())

    async def ready(self) -> Channel | None:
        """The channel once a connection is up, or None if the link ended first."""
        if not self._ready.is_set():
            await first_done(self._ready.wait(), self._ended.wait())
            if not self._ready.is_set():
                return None
        return self.ch

    async def send(self, data: str | bytes | Streamed) -> bool:
        """Send one message on the live connection, waiting for a (re)connect if need be.

        A message that could not be written because the connection closed under it is sent
        again on the next connection (with ``--reconnect``), unless it was streamed (read as
        it went out: it cannot be read again). False if the link ended first."""
        while True:
            ch = await self.ready()
            if ch is None:
                return False
            try:
                if isinstance(data, Streamed):
                    await ch.send_stream(data.chunks, text=data.text)
                else:
                    await ch.send(data)
                return True
            except (ChannelClosed, ChannelDisposed, WriteTimeout):
                # WriteTimeout: the connection was aborted under this message (D8, 1006);
                # the supervisor reports it as the close it is.
                if self.ch is ch:
                    self._ready.clear()  # this connection is over; the supervisor will see it
                if self.stopping or self.ended or isinstance(data, Streamed):
                    return False
                await asyncio.sleep(0)  # let the supervisor see the close

    async def close(self, code: int = 1000, reason: str = "", *, abrupt: bool = False) -> int:
        """The user ends the session: close (gracefully unless ``abrupt``), no reconnect.
        Returns the exit status: 0 when the close went as asked."""
        self.stopping = True
        self._stop.set()
        ch = self.ch
        status = ExitStatus.OK
        if ch is not None and self._closed is not None:
            closed = self._closed
            ours_went_first = False  # deinit's own Close went out (the link was still open)

            def watch(event: Event) -> None:
                nonlocal ours_went_first
                if (
                    event.party.kind == "deinit"
                    and event.what is What.FRAME_OUT
                    and event.detail.get("opcode") == "close"
                ):
                    ours_went_first = True

            unsubscribe = ch.subscribe(watch)
            try:
                with contextlib.suppress(ChannelError):
                    await ch.deinit(code, reason, abrupt=abrupt)
            finally:
                unsubscribe()
            if closed.done() and not abrupt:
                info = closed.result()
                # As in send: normal when clean, or when our Close went first and was
                # answered (whatever code came back). Not when the connection had already
                # failed (our 1002/1007/1009 out before deinit) or the server's Close went
                # first with a code of its own: those are abnormal even if deinit saw them.
                answered = ours_went_first and info.code != 1006
                if not (info.clean or answered):
                    status = ExitStatus.ABNORMAL
                    self.final_message = self._describe(info)
        self._stop_status = status
        self._stop_done.set()
        if self._closed is not None and not self._closed.done():
            # No connection was up (connecting, or waiting to reconnect): end the supervisor.
            self._closed.set_result(CloseInfo(1000, "", "local", True))
        return self._stopped()

    def describe(self) -> dict[str, Any]:
        return {
            "url": self.config.url,
            "connections": self.connections,
            "reconnect": self.status_line or ("on" if self.config.reconnect else "off"),
        }
