"""The embedded server in a thread of its own, for tests that run the real ``wschan`` executable
as a subprocess (the test thread blocks on the subprocess while the server's loop keeps running).
Only the tests use it, so it lives here and not in :mod:`wschan_cli.server`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

from wschan_cli.server import Behaviour, EmbeddedServer

__all__ = ["ThreadedServer"]

logger = logging.getLogger(__name__)


class ThreadedServer:
    """Runs an :class:`EmbeddedServer` in a background thread with its own event loop.

    For tests that drive the real ``wschan`` executable as a subprocess::

        with ThreadedServer(Behaviour(close_after=1)) as srv:
            subprocess.run(["wschan", ..., srv.url], timeout=10)
            assert srv.close_codes == [1000]

    The record attributes return copies taken from the server thread's lists.
    Entering waits at most ``start_timeout`` for the server to listen; leaving
    stops it (bounded by the server's shutdown) and joins the thread for at most
    ``stop_timeout`` seconds.
    """

    def __init__(
        self,
        behaviour: Behaviour | None = None,
        *,
        start_timeout: float = 10.0,
        stop_timeout: float = 10.0,
        **options: Any,
    ) -> None:
        # ``options`` are EmbeddedServer's own (host, port, compression, ssl, max_size, ...),
        # passed as they are so that their defaults are written in one place.
        self._kwargs: dict[str, Any] = {"behaviour": behaviour, **options}
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._server: EmbeddedServer | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Do not mask the test's own exception with a shutdown complaint.
        self.stop(raise_on_hang=exc_type is None)

    def start(self) -> None:
        """Start the thread and wait until the server listens."""
        if self._thread is not None:
            raise RuntimeError("the server is already started")
        self._thread = threading.Thread(target=self._run, name="wschan-test-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(self.start_timeout):
            raise TimeoutError(f"server did not start within {self.start_timeout}s")
        if self._error is not None:
            self._thread.join(self.stop_timeout)
            raise self._error

    def stop(self, raise_on_hang: bool = True) -> None:
        """Stop the server and join its thread (bounded by ``stop_timeout``)."""
        thread = self._thread
        if thread is None:
            return
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended
                loop.call_soon_threadsafe(stop.set)
        thread.join(self.stop_timeout)
        if thread.is_alive() and raise_on_hang:
            raise RuntimeError(f"server thread did not stop within {self.stop_timeout}s")

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to start() if it happened before ready
            if not self._ready.is_set():
                self._error = exc
                self._ready.set()
            else:
                logger.exception("server thread failed")

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with EmbeddedServer(**self._kwargs) as server:
            self._server = server
            self._ready.set()
            await self._stop.wait()

    # -- access from the test thread ---------------------------------------------

    @property
    def server(self) -> EmbeddedServer:
        """The underlying server; only touch its lists, never its loop objects, from here."""
        if self._server is None:
            raise RuntimeError("the server is not started")
        return self._server

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def behaviour(self) -> Behaviour:
        return self.server.behaviour

    @property
    def received(self) -> list[str | bytes]:
        return list(self.server.received)

    @property
    def pongs(self) -> list[bytes]:
        return list(self.server.pongs)

    @property
    def connections(self) -> int:
        return self.server.connections

    @property
    def close_codes(self) -> list[int | None]:
        return list(self.server.close_codes)

    @property
    def request_headers(self) -> list[dict[str, str]]:
        return [dict(headers) for headers in self.server.request_headers]

    @property
    def request_paths(self) -> list[str]:
        return list(self.server.request_paths)

    @property
    def subprotocols(self) -> list[str | None]:
        return list(self.server.subprotocols)

    @property
    def subprotocol(self) -> str | None:
        return self.server.subprotocol

    def _call(self, make: Callable[[EmbeddedServer], Any], timeout: float) -> None:
        if self._loop is None:
            raise RuntimeError("the server is not started")
        future = asyncio.run_coroutine_threadsafe(make(self.server), self._loop)
        try:
            future.result(timeout + 1.0)
        except TimeoutError:
            future.cancel()
            raise

    def ping_all(self, payload: bytes = b"", timeout: float = 5.0) -> int:
        """Send a Ping with ``payload`` on every open connection; return how many were pinged."""
        if self._loop is None:
            raise RuntimeError("the server is not started")
        future = asyncio.run_coroutine_threadsafe(self.server.ping_all(payload), self._loop)
        return future.result(timeout)

    def wait_until(self, predicate: Callable[[EmbeddedServer], bool], timeout: float = 5.0) -> None:
        """Block until ``predicate(server)`` is true; it runs in the server thread."""
        self._call(lambda srv: srv.wait_until(lambda: predicate(srv), timeout), timeout)

    def wait_connections(self, n: int, timeout: float = 5.0) -> None:
        """Block until at least ``n`` upgrades were accepted (TimeoutError after ``timeout``)."""
        self._call(lambda srv: srv.wait_connections(n, timeout), timeout)

    def wait_ended(self, n: int, timeout: float = 5.0) -> None:
        """Block until at least ``n`` accepted connections ended."""
        self._call(lambda srv: srv.wait_ended(n, timeout), timeout)

    def wait_received(self, n: int, timeout: float = 5.0) -> None:
        """Block until at least ``n`` messages were received in total."""
        self._call(lambda srv: srv.wait_received(n, timeout), timeout)
