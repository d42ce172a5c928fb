"""The Ctrl-C rule, written once (cli.md): the first Ctrl-C asks the run to end cleanly (its
``stop``: cancel what waits, close with a Close frame); a second one quits at once with 130,
after ``last_words`` (e.g. flushing the replies already received) and one line on stderr.

``send``, the bridge and the prompt (while a command waits; at the prompt itself Ctrl-C is a
key, handled the same way through ``press``) all use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable

from wschan_cli.exitcodes import ExitStatus


class CtrlC:
    def __init__(
        self,
        stop: Callable[[], None],
        *,
        error: Callable[[str], None],
        last_words: Callable[[], None] = lambda: None,
    ) -> None:
        self.stop = stop
        self.error = error
        self.last_words = last_words
        self.pressed = False  # a first Ctrl-C came: the next one quits
        self._loop: asyncio.AbstractEventLoop | None = None

    def press(self) -> None:
        """A Ctrl-C (the SIGINT handler, or the prompt's key binding)."""
        if self.pressed:
            try:
                self.last_words()
            finally:
                self.error("interrupted")
                # At once: what is still in flight is left to the kernel (the Close included).
                os._exit(ExitStatus.INTERRUPTED)
        self.pressed = True
        self.stop()

    def install(self) -> None:
        """Handle SIGINT on the running loop (where the platform lets us: elsewhere Ctrl-C
        ends asyncio.run, which the runner turns into 130)."""
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGINT, self.press)
            self._loop = loop

    def remove(self) -> None:
        if self._loop is not None:
            self._loop.remove_signal_handler(signal.SIGINT)
            self._loop = None
