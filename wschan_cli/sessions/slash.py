"""Slash commands: what a line typed at the prompt asks for.

A line that starts with ``/`` is a command, ``//`` escapes a literal slash, anything else is a
text message. Parsing only: the session (``repl``) carries them out.
"""

from __future__ import annotations

from dataclasses import dataclass

from wschan_cli.render.closecodes import close_frame_problem

HELP = [
    ("/ping [TEXT]", "send a Ping (TEXT as payload), print the round-trip time"),
    ("/close [CODE] [REASON]", "close with a Close frame (default 1000) and exit"),
    ("/binary HEX", "send a binary message given in hex"),
    ("/base64 DATA", "send a binary message given in base64"),
    ("/file PATH", "send a file as one message (text if UTF-8, else binary)"),
    ("/pretty", "toggle JSON pretty-printing"),
    ("/deinit [--abrupt]", "tear the client down as client.deinit() does, showing each transition"),
    ("/terminate", "end the read side locally: handle_terminate() runs (a local simulation)"),
    ("/state", "print the full channel state"),
    ("/help", "this list"),
    ("/quit", "close (1000) and exit; so does Ctrl-D"),
    ("//TEXT", "send the message /TEXT"),
]

NAMES = frozenset(
    {"ping", "close", "binary", "base64", "file", "pretty", "deinit", "terminate", "state"}
    | {"help", "quit", "exit"}
)


@dataclass(frozen=True)
class Line:
    """``command`` is "" for a message (``text`` is the message), else the command's name and
    ``text`` its argument string (stripped)."""

    command: str
    text: str


def parse(line: str) -> Line:
    if line.startswith("//"):
        return Line("", line[1:])
    if line.startswith("/"):
        name, _, rest = line[1:].partition(" ")
        return Line(name.strip().lower() or "help", rest.strip())
    return Line("", line)


def parse_close(args: str) -> tuple[int, str]:
    """``/close [CODE] [REASON]`` -> (code, reason); ValueError says what is wrong."""
    code_text, _, reason = args.partition(" ")
    if not code_text:
        return 1000, ""
    try:
        code = int(code_text)
    except ValueError:
        raise ValueError(f"{code_text!r} is not a close code") from None
    reason = reason.strip()
    if problem := close_frame_problem(code, reason):
        raise ValueError(problem[1])
    return code, reason
