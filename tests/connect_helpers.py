"""Helpers for the terminal tests of ``wschan connect``: the real executable on a pseudo-terminal
(pexpect), its output fed to a terminal emulator (pyte) so tests read the screen as a person sees
it (prompt_toolkit redraws only the characters that change), and a server that can push a message
whenever the test says.

Everything listens on and connects to 127.0.0.1 only. Waits are bounded; nothing sleeps for
ordering: each wait polls the screen until a pattern shows up or a deadline passes.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import threading
import time
from typing import Any

import pexpect
import pyte

from .send_helpers import clean_env


class Terminal:
    """``wschan ARGS`` on a pseudo-terminal of ``rows`` x ``cols``, with a screen to read."""

    def __init__(self, *args: str, env: dict[str, str], rows: int = 50, cols: int = 200) -> None:
        self.screen = pyte.Screen(cols, rows)
        self.stream = pyte.ByteStream(self.screen)
        self.child = pexpect.spawn(
            sys.executable,
            ["-m", "wschan_cli", *args],
            env=clean_env(TERM="xterm-256color", NO_COLOR="1", **env),
            dimensions=(rows, cols),
            timeout=10,
        )
        self.child.delaybeforesend = None
        # prompt_toolkit asks where the cursor is (CPR); the emulator answers through the pty.
        self.screen.write_process_input = lambda data: self.child.send(data.encode())
        self.eof = False
        self.raw = bytearray()

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.child.isalive():
            self.child.terminate(force=True)
        self.child.close()

    def pump(self, timeout: float = 0.05) -> None:
        if self.eof:
            return
        try:
            data = self.child.read_nonblocking(1 << 16, timeout)
        except pexpect.TIMEOUT:
            return
        except pexpect.EOF:
            self.eof = True
            return
        self.raw += data
        self.stream.feed(data)

    def text(self) -> str:
        return "\n".join(line.rstrip() for line in self.screen.display)

    def toolbar(self) -> str:
        """The last non-empty line of the screen."""
        lines = [line.rstrip() for line in self.screen.display if line.strip()]
        return lines[-1] if lines else ""

    def wait_for(self, pattern: str, timeout: float = 10.0, where: str = "screen") -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while True:
            shown = self.toolbar() if where == "toolbar" else self.text()
            match = re.search(pattern, shown)
            if match:
                return match
            if self.eof or time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} not on the {where} within {timeout}s:\n{shown}")
            self.pump()

    def send(self, text: str) -> None:
        self.child.send(text.encode())

    def wait_exit(self, timeout: float = 10.0) -> int:
        deadline = time.monotonic() + timeout
        while not self.eof:
            if time.monotonic() > deadline:
                raise AssertionError(f"still running after {timeout}s:\n{self.text()}")
            self.pump(0.1)
        self.child.wait()
        status = self.child.exitstatus
        assert status is not None, f"killed by signal {self.child.signalstatus}"
        return int(status)


class PushServer:
    """An echo server on 127.0.0.1 (websockets, in a thread) that can also push a text message
    to every client on demand: ``push(text)``."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.received: list[str | bytes] = []
        self.connections: set[Any] = set()
        self.url = ""
        self._server: Any = None

    def __enter__(self) -> PushServer:
        from websockets.asyncio.server import serve

        async def handler(ws: Any) -> None:
            self.connections.add(ws)
            self._connected.set()
            try:
                async for message in ws:
                    self.received.append(message)
                    await ws.send(message)
            except Exception:
                pass
            finally:
                self.connections.discard(ws)

        async def start() -> None:
            self._connected = asyncio.Event()
            self._server = await serve(handler, "127.0.0.1", 0)
            port = self._server.sockets[0].getsockname()[1]
            self.url = f"ws://127.0.0.1:{port}/"

        self.thread.start()
        asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            self._server.close()
            await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    def push(self, text: str) -> None:
        """Send ``text`` to every client (waiting, briefly, for one to be connected)."""

        async def send() -> None:
            async with asyncio.timeout(10):
                await self._connected.wait()
            for ws in list(self.connections):
                await ws.send(text)

        asyncio.run_coroutine_threadsafe(send(), self.loop).result(10)


def state_env(tmp: os.PathLike[str] | str) -> dict[str, str]:
    """An environment whose history lives under ``tmp``."""
    return {"XDG_STATE_HOME": str(tmp)}
