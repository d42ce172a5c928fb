"""Output writers: escaping, secret masking, colour choice, reply formats, diagnostics."""

from __future__ import annotations

import io
import json

import pytest

from wschan_cli.channel import Event, Party, What
from wschan_cli.render.color import Style, color_enabled
from wschan_cli.render.diagnostics import Diagnostics, preview
from wschan_cli.render.escape import escape_control, has_control
from wschan_cli.render.replies import ReplyWriter, iso_time
from wschan_cli.secrets import mask_header, mask_url


def test_escape_control() -> None:
    assert escape_control("plain [b]text[/b] é") == "plain [b]text[/b] é"
    assert escape_control("\x1b[31mred") == "\\x1b[31mred"
    assert escape_control("a\rb\x00c\x7f\x9b") == "a\\rb\\x00c\\x7f\\x9b"
    assert escape_control("keep\ttab\nand line") == "keep\ttab\nand line"
    assert escape_control("one\tline\n", one_line=True) == "one\\tline\\n"
    assert escape_control("\u202eevil\u2066") == "\\u202eevil\\u2066"
    assert has_control("\x1b") and not has_control("ok\n")


def test_masking() -> None:
    assert mask_header("Authorization", "Bearer abc") == "Bearer ****"
    assert mask_header("proxy-authorization", "Basic dXM6cHc=") == "Basic ****"
    assert mask_header("Authorization", "rawtoken") == "****"
    assert mask_header("Cookie", "a=1; b=2") == "****"
    assert mask_header("Set-Cookie", "id=1") == "****"
    assert mask_header("X-Other", "visible") == "visible"
    assert mask_url("ws://u:pw@h/ and http://x:y@p:1") == "ws://u:****@h/ and http://x:****@p:1"
    assert mask_url("ws://user@h/") == "ws://user@h/"


@pytest.mark.parametrize(
    ("choice", "env", "tty", "enabled"),
    [
        ("always", {}, False, True),
        ("never", {"FORCE_COLOR": "1"}, True, False),
        ("auto", {}, True, True),
        ("auto", {}, False, False),
        ("auto", {"NO_COLOR": "1"}, True, False),
        ("auto", {"FORCE_COLOR": "1"}, False, True),
        ("auto", {"TERM": "dumb"}, True, False),
    ],
)
def test_color_choice(
    choice: str, env: dict[str, str], tty: bool, enabled: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("NO_COLOR", "FORCE_COLOR", "TERM"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    class Stream(io.StringIO):
        def isatty(self) -> bool:
            return tty

    assert color_enabled(choice, Stream()) is enabled


def written(writer: ReplyWriter) -> bytes:
    assert isinstance(writer.out, io.BytesIO)
    return writer.out.getvalue()


def test_plain_writer() -> None:
    writer = ReplyWriter(io.BytesIO())
    writer.message("text", "hé \x1b[1m", 0.0)
    writer.message("binary", b"\x00\xff", 0.0)
    writer.close(code=1000, reason="", by="local", clean=True, when=0.0)  # plain: nothing
    assert written(writer) == "hé \x1b[1m\n".encode() + b"00ff\n"
    tty = ReplyWriter(io.BytesIO(), escape=True)
    tty.message("text", "hé \x1b[1m", 0.0)
    assert written(tty) == "hé \\x1b[1m\n".encode()


def test_json_writer() -> None:
    writer = ReplyWriter(io.BytesIO(), fmt="json")
    writer.message("text", "\x1b", 1.25)
    writer.message("binary", b"\x01", 1.5)
    writer.close(code=4001, reason="bye", by="peer", clean=False, when=2.0)
    lines = [json.loads(line) for line in written(writer).splitlines()]
    assert lines == [
        {"t": 1.25, "dir": "in", "type": "text", "data": "\x1b"},
        {"t": 1.5, "dir": "in", "type": "binary", "data": "01"},
        {"t": 2.0, "type": "close", "code": 4001, "reason": "bye", "by": "peer", "clean": False},
    ]
    assert b"\x1b" not in written(writer)  # JSON escapes it


def test_raw_writer_and_timestamps() -> None:
    raw = ReplyWriter(io.BytesIO(), fmt="raw")
    raw.message("text", "\x1b", 0)
    raw.message("binary", b"\x00\x01", 0)
    assert written(raw) == b"\x1b\n\x00\x01"
    stamped = ReplyWriter(io.BytesIO(), timestamps=True)
    stamped.message("text", "x", 0.5)
    assert written(stamped) == b"1970-01-01T00:00:00.500000Z x\n"
    assert iso_time(86400) == "1970-01-02T00:00:00.000000Z"


def test_pretty_writer() -> None:
    writer = ReplyWriter(io.BytesIO(), pretty=True, escape=True)
    writer.message("text", '{"a":"\\u202e[b]"}', 0)
    writer.message("text", "{not json", 0)
    assert written(writer).decode() == '{\n  "a": "\\u202e[b]"\n}\n{not json\n'
    colored = ReplyWriter(io.BytesIO(), pretty=True, color=True)
    colored.message("text", '{"k": "[red]v[/red]"}', 0)
    out = written(colored).decode()
    assert "\x1b[" in out and "[red]v[/red]" in out


def event(what: What, party: str = "send", **detail: object) -> Event:
    return Event(
        seq=1,
        time=1.5,
        party=Party(party, 1),
        what=what,
        sending=True,
        established=1,
        state="success",
        holder=None,
        waiters=0,
        detail=dict(detail),
    )


def test_diagnostics_verbose_and_include() -> None:
    err = io.StringIO()
    diag = Diagnostics(err, verbose=True, t0=1.0)
    diag(event(What.FRAME_OUT, opcode="text", size=7))
    diag(event(What.FRAME_IN, "reader", opcode="text", size=5, fin=True, data=b"\x1bhi"))
    diag(event(What.CONNECT, "open", url="ws://u:secret@h/"))
    diag(
        event(
            What.UPGRADED,
            "open",
            status=101,
            headers=[("Set-Cookie", "id=42"), ("X-Y", "z\x1b")],
        )
    )
    text = err.getvalue()
    assert "[   0.500] > text frame, 7 bytes on the wire (send#1)" in text
    assert '< text frame, 5 bytes: "\\x1bhi"' in text
    assert "secret" not in text and "ws://u:****@h/" in text
    assert "< HTTP/1.1 101 Switching Protocols\n< Set-Cookie: ****\n< X-Y: z\\x1b\n<\n" in text
    only_include = io.StringIO()
    Diagnostics(only_include, include=True)(event(What.FRAME_OUT, opcode="text", size=1))
    assert only_include.getvalue() == ""


def test_diagnostics_json_and_errors() -> None:
    err = io.StringIO()
    diag = Diagnostics(err, verbose=True, json_lines=True)
    diag(event(What.UPGRADED, "open", status=101, headers=[("Authorization", "Bearer x")]))
    diag(event(What.FRAME_IN, "reader", opcode="binary", size=2, fin=True, data=b"\x00\x01"))
    diag.error("bad thing at ws://a:b@h/\nsecond line")
    lines = err.getvalue().splitlines()
    assert json.loads(lines[0]) == {
        "type": "response",
        "status": 101,
        "headers": [["Authorization", "Bearer ****"]],
    }
    assert json.loads(lines[1])["what"] == "frame_in" and json.loads(lines[1])["data"] == 2
    assert lines[2] == "wschan: bad thing at ws://a:****@h/\\nsecond line"
    assert Style(True).red("x") == "\x1b[31mx\x1b[0m" and Style(False).red("x") == "x"


def test_preview() -> None:
    assert preview(b"\x03\xe8bye", "close") == '1000 "bye"'
    assert preview(b"\x00" * 100, "binary").endswith("...")
    assert preview("é".encode() * 200, "text").endswith('..."')
