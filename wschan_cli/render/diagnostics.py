"""What the client commands say on stderr: -i (the handshake response), -v (every frame and
every transition of the channel), notes and the one-line error.

Reads channel events only. Secrets are masked (``secrets``); server text (frame previews, close
reasons, header values) is escaped onto one line (``escape``). With ``json`` each event is one
JSON object per line instead, masked the same way.
"""

from __future__ import annotations

import http
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TextIO

from wschan_cli.secrets import DEFAULT, Secrets

from .color import Style, color_enabled
from .escape import escape_control

if TYPE_CHECKING:
    from wschan_cli.settings import ConnectionSettings

_PREVIEW = 80


def preview(data: bytes, opcode: str) -> str:
    if opcode in ("binary", "ping", "pong") or opcode == "close":
        if opcode == "close" and len(data) >= 2:
            code = int.from_bytes(data[:2], "big")
            reason = data[2:].decode(errors="replace")
            return f"{code}" + (f' "{escape_control(reason, one_line=True)}"' if reason else "")
        shown = data[: _PREVIEW // 2].hex()
        return shown + ("..." if len(data) > _PREVIEW // 2 else "")
    text = data[: _PREVIEW * 4].decode(errors="replace")
    cut = len(text) > _PREVIEW or len(data) > _PREVIEW * 4
    return '"' + escape_control(text[:_PREVIEW], one_line=True) + ('..."' if cut else '"')


def diagnostics_for(conn: ConnectionSettings, err: TextIO, **changes: Any) -> Diagnostics:
    """The -i / -v / notes writer on ``err`` for a command's connection settings (``changes``
    override)."""
    settings: dict[str, Any] = {
        "verbose": conn.verbose,
        "include": conn.include,
        "style": Style(color_enabled(conn.color, err)),
        "secrets": conn.secrets,
    }
    settings.update(changes)
    return Diagnostics(err, **settings)


def event_loop_name() -> str | None:
    """The running event loop's package ("uvloop" or "asyncio"; runner.loop_factory picks it),
    or None outside a loop: -v says which one runs the connection."""
    import asyncio

    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    return type(loop).__module__.partition(".")[0]


class Diagnostics:
    """Writes -i / -v output and notes to ``err`` (a text stream, normally stderr)."""

    def __init__(
        self,
        err: TextIO,
        *,
        verbose: bool = False,
        include: bool = False,
        json_lines: bool = False,
        style: Style | None = None,
        t0: float = 0.0,
        secrets: Secrets = DEFAULT,
    ) -> None:
        self.err = err
        self.secrets = secrets
        self.verbose = verbose
        self.include = include
        self.json_lines = json_lines
        self.style = style or Style(False)
        self.t0 = t0

    @property
    def watches(self) -> bool:
        """Whether -i or -v asked for the channel's events: then the session subscribes this
        writer to every channel it makes."""
        return self.include or self.verbose

    # ------------------------------------------------------------------ masking

    def _shown(self, value: Any) -> Any:
        if isinstance(value, str):
            return escape_control(self.secrets.text(value), one_line=True)
        return value

    def _masked_headers(self, headers: Iterable[Any]) -> list[tuple[str, str]]:
        return [(str(name), self.secrets.header(str(name), str(value))) for name, value in headers]

    # ------------------------------------------------------------------ free text

    def write(self, line: str) -> None:
        self.err.write(line + "\n")
        self.err.flush()

    def note(self, text: str) -> None:
        self.write(self.style.dim(f"wschan: {self._shown(text)}"))

    def error(self, text: str) -> None:
        prefix = self.style.red(self.style.bold("wschan:"))
        self.write(f"{prefix} {self._shown(text)}")

    def request(self, target: str, headers: Iterable[tuple[str, str]]) -> None:
        """-v: the request line and the headers wschan adds to the upgrade request (masked).

        websockets adds Host, Upgrade, Connection, Sec-WebSocket-Key/-Version/-Extensions.
        """
        if not self.verbose:
            return
        masked = self._masked_headers(headers)
        loop = event_loop_name()
        if self.json_lines:
            import json  # here, as below: only JSON Lines output needs it

            record = {"type": "request", "target": self.secrets.text(target), "headers": masked}
            if loop is not None:
                record["loop"] = loop
            self.write(json.dumps(record))
            return
        if loop is not None:
            self.write(self.style.dim(f"* event loop: {loop}"))
        self.write(self.style.cyan(f"> GET {self._shown(target)}"))
        for name, value in masked:
            self.write(self.style.cyan(f"> {self._shown(name)}: {self._shown(value)}"))

    # ------------------------------------------------------------------ events

    def __call__(self, event: Any) -> None:
        """A channel event (``wschan_cli.channel.Event``)."""
        what = event.what.value
        if what == "upgraded":
            self._response(event)
            return
        if not self.verbose:
            return
        if self.json_lines:
            import json

            record = event.to_json()
            if "headers" in record:
                record["headers"] = self._masked_headers(record["headers"])
            for key, value in record.items():
                if isinstance(value, str):
                    record[key] = self.secrets.text(value)
            self.write(json.dumps(record, ensure_ascii=False, default=str))
            return
        self.write(self._line(event))

    def _response(self, event: Any) -> None:
        self.response(int(event.detail.get("status", 0)), event.detail.get("headers", []))

    def response(self, status: int, headers: Iterable[Any]) -> None:
        """-i / -v: the handshake response's status line and headers (masked); the 101 from
        its event, a rejection (any other status) from the error that reports it."""
        if not self.watches:
            return
        headers = self._masked_headers(headers)
        if self.json_lines:
            import json

            self.write(json.dumps({"type": "response", "status": status, "headers": headers}))
            return
        try:
            phrase = http.HTTPStatus(status).phrase
        except ValueError:
            phrase = ""
        self.write(self.style.green(f"< HTTP/1.1 {status} {phrase}".rstrip()))
        for name, value in headers:
            self.write(self.style.green(f"< {self._shown(name)}: {self._shown(value)}"))
        self.write("<")

    def _line(self, event: Any) -> str:
        d = event.detail
        what = event.what.value
        stamp = self.style.dim(f"[{event.time - self.t0:8.3f}]")
        party = str(event.party)
        if what == "frame_out":
            text = f"> {d.get('opcode')} frame, {d.get('size')} bytes on the wire"
            return f"{stamp} {self.style.cyan(text)} ({party})"
        if what == "frame_in":
            opcode = str(d.get("opcode"))
            data = d.get("data", b"")
            fin = "" if d.get("fin", True) else ", not final"
            text = f"< {opcode} frame, {d.get('size')} bytes{fin}: {preview(data, opcode)}"
            return f"{stamp} {self.style.green(text)}"
        if what == "established":
            change = f"established {d.get('before')} -> {event.established}"
            return f"{stamp} * {party} {self.style.yellow(change)}"
        if what == "state":
            error = f" ({self._shown(d['error'])})" if d.get("error") else ""
            return f"{stamp} * {party} {self.style.yellow('state -> ' + event.state)}{error}"
        if what in ("take", "release"):
            flag = "sending -> true" if what == "take" else "sending -> false"
            return f"{stamp} * {party} {what}: {self.style.yellow(flag)}"
        extra = " ".join(f"{k}={self._shown(v)}" for k, v in d.items() if k != "data")
        values = f"(sending={str(event.sending).lower()} established={event.established})"
        return f"{stamp} * {party} {what}{(' ' + extra) if extra else ''} {self.style.dim(values)}"
