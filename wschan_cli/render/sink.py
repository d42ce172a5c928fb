"""The replies on their way to stdout, for ``send`` and the bridge alike: each one written as it
arrives, one flush per turn of the event loop (a burst of replies is one write), and a stdout
that can take no more latched (a broken pipe: the reader went away, as ``| head -1``; or a write
error: a full disk), after which nothing more is written and the session closes with 1001.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .replies import ReplyWriter

#: What writing to a stdout that went away raises: BrokenPipeError and the other OSErrors
#: (ENOSPC, EIO), ValueError when the file was closed.
GONE = (OSError, ValueError)


class ReplySink:
    def __init__(
        self,
        writer: ReplyWriter,
        *,
        on_broken: Callable[[], None] = lambda: None,
    ) -> None:
        self.writer = writer
        self.on_broken = on_broken  # stdout just went away (the session ends sooner)
        self.gone: str | None = None  # why stdout takes no more, once it does
        self.flush_pending = False

    def message(self, kind: str, data: str | bytes, when: float) -> bool:
        """Write one reply; False (nothing written) once stdout is gone."""
        if self.gone:
            return False
        try:
            self.writer.message(kind, data, when)
        except GONE as exc:
            self._broke(exc)
            return False
        self._flush_soon()
        return True

    def close(self, info: Any, when: float) -> None:
        """Write the record of a close (``info`` is the channel's ``CloseInfo``)."""
        if self.gone:
            return
        try:
            self.writer.close(
                code=info.code, reason=info.reason, by=info.by, clean=info.clean, when=when
            )
        except GONE as exc:
            self._broke(exc)
            return
        self._flush_soon()

    def flush(self) -> None:
        self.flush_pending = False
        if self.gone:
            return
        try:
            self.writer.flush()
        except GONE as exc:
            self._broke(exc)

    def finish(self) -> None:
        """The last flush before exit; a closed stdout is then pointed at /dev/null, so that
        Python does not complain again when it flushes stdout at exit."""
        self.flush()
        if self.gone:
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
            except (OSError, ValueError):
                pass

    def _flush_soon(self) -> None:
        if not self.flush_pending:
            self.flush_pending = True
            asyncio.get_running_loop().call_soon(self.flush)

    def _broke(self, exc: BaseException) -> None:
        if isinstance(exc, OSError) and not isinstance(exc, BrokenPipeError):
            self.gone = f"cannot write to stdout: {exc.strerror or exc}"
        else:
            self.gone = "stdout was closed (broken pipe)"
        self.on_broken()

    def farewell(self) -> str:
        """The one line a session ends with when stdout went away."""
        return f"{self.gone}; closed the connection with 1001"
