"""Writing received messages to stdout: plain lines, JSON Lines or raw bytes.

Plain (the default): one reply per line, text as is, binary as lowercase hex. On a terminal,
control characters in text are escaped (``escape_control``), and in JSON Lines DEL, C1 and
bidi controls are written as ``\\uXXXX`` (still the same JSON). ``pretty`` re-indents text replies
that are JSON, highlighted when colour is on (rich, imported only then). ``timestamps`` prefixes
each reply with its arrival time, ISO 8601 in UTC.

JSON Lines: ``{"t": unix time, "dir": "in", "type": "text"|"binary", "data": text or hex}`` per
reply, then one ``{"t", "type": "close", "code", "reason", "by", "clean"}`` when the connection
ends.

Raw: text replies as they came, each followed by a newline; binary replies as their bytes, with
nothing added, so a single binary reply can be redirected to a file intact.

Nothing here interprets markup: server text is only ever escaped, indented or highlighted as
the JSON it parses as.
"""

from __future__ import annotations

import datetime as _dt
import io
from typing import Any, BinaryIO

from .escape import escape_control, escape_json_controls

FORMATS = ("plain", "json", "raw")


def iso_time(when: float) -> str:
    stamp = _dt.datetime.fromtimestamp(when, tz=_dt.UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class ReplyWriter:
    """Writes each received message, as it is received, to a binary stream.

    The stream is buffered; call ``flush`` when a batch of messages has been written (the send
    command flushes once per turn of the event loop, so replies stream without one system call
    per message).
    """

    def __init__(
        self,
        out: BinaryIO,
        *,
        fmt: str = "plain",
        timestamps: bool = False,
        pretty: bool = False,
        escape: bool = False,
        color: bool = False,
    ) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown output format {fmt!r}")
        self.out = out
        self.fmt = fmt
        self.timestamps = timestamps
        self.pretty = pretty
        self.escape = escape
        self.color = color
        self.written = 0
        self._console: Any = None

    def message(self, kind: str, data: str | bytes, when: float) -> None:
        """One received message: ``kind`` is "text" (``data`` a str) or "binary" (bytes)."""
        self.written += 1
        if self.fmt == "json":
            shown = data if isinstance(data, str) else data.hex()
            self._json({"t": round(when, 6), "dir": "in", "type": kind, "data": shown})
        elif self.fmt == "raw":
            if isinstance(data, str):
                self.out.write(data.encode("utf-8", "surrogateescape") + b"\n")
            else:
                self.out.write(data)
        else:
            self._line(self._plain(data), when)

    def close(self, *, code: int, reason: str, by: str, clean: bool, when: float) -> None:
        """The connection ended (JSON Lines only: the other formats print data, nothing else)."""
        if self.fmt != "json":
            return
        record = {
            "t": round(when, 6),
            "type": "close",
            "code": code,
            "reason": reason,
            "by": by,
            "clean": clean,
        }
        self._json(record)

    def flush(self) -> None:
        self.out.flush()

    # ------------------------------------------------------------------ plain

    def _plain(self, data: str | bytes) -> str:
        if isinstance(data, bytes):
            return data.hex()
        if self.pretty:
            pretty = self._pretty_json(data)
            if pretty is not None:
                return pretty
        return escape_control(data) if self.escape else data

    def _pretty_json(self, text: str) -> str | None:
        import json  # here, as below: a plain run does not load json (~1 ms of its start-up)

        try:
            value = json.loads(text)
        except ValueError:
            return None
        # json.dumps escapes every control character inside strings; bidi controls and other
        # oddities are escaped too on a terminal, before any colour is added.
        shown = json.dumps(value, indent=2, ensure_ascii=False)
        if self.escape:
            shown = escape_control(shown)
        if self.color:
            shown = self._highlight(shown)
        return shown

    def _highlight(self, text: str) -> str:
        from rich.console import Console
        from rich.highlighter import JSONHighlighter
        from rich.text import Text

        if self._console is None:
            self._console = Console(
                file=io.StringIO(),
                force_terminal=True,
                color_system="standard",
                width=1_000_000,
                soft_wrap=True,
                highlight=False,
                markup=False,
                emoji=False,
            )
        console = self._console
        styled = Text(text)  # Text() never parses markup: brackets stay brackets
        JSONHighlighter().highlight(styled)
        console.file.seek(0)
        console.file.truncate()
        console.print(styled, end="")
        rendered: str = console.file.getvalue()
        return rendered

    def _json(self, record: dict[str, Any]) -> None:
        import json

        line = json.dumps(record, ensure_ascii=False)
        self._line(escape_json_controls(line) if self.escape else line)

    def _line(self, text: str, when: float | None = None) -> None:
        if self.timestamps and when is not None:
            text = f"{iso_time(when)} {text}"
        self.out.write(text.encode("utf-8", "surrogateescape") + b"\n")
