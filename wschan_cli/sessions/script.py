"""``wschan send --input jsonl``: a script of JSON Lines, one action per line, read from stdin
while it runs.

Each line is one JSON object with exactly one action key::

    {"text": "..."}             a text message
    {"binary": "<hex>"}         a binary message, given in hex
    {"base64": "..."}           a binary message, given in base64
    {"ping": "..."}             a Ping with this (UTF-8, at most 125 bytes) payload
    {"sleep": 0.5}              pause (seconds)
    {"expect": N}               wait for N replies
    {"until": "regex"}          wait for a reply matching regex
    {"close": 1000, "reason": "..."}   close with this code (and reason): the script ends

Blank lines are skipped (they still count in line numbers). This module parses and checks; the
command (``send``) carries the steps out, so a step goes out only after every line before it
did. A bad line raises ``InputError("line N: ...")`` when it is reached: what came before it is
already on the wire.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from wschan_cli.render.closecodes import close_frame_problem

from .outgoing import next_batch
from .payload import InputError, decode_message
from .reader import STREAM_AFTER, InputReader, StreamedMessage

ACTIONS = ("text", "binary", "base64", "ping", "sleep", "expect", "until", "close")


@dataclass(frozen=True)
class Send:
    data: str | bytes


@dataclass(frozen=True)
class Ping:
    payload: bytes


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class Wait:
    """``expect`` replies, or one reply matching ``until``; ``line`` names it in messages."""

    line: int
    expect: int | None = None
    until: re.Pattern[str] | None = None


@dataclass(frozen=True)
class Close:
    code: int
    reason: str


Step = Send | Ping | Sleep | Wait | Close


def parse_line(raw: bytes, number: int) -> Step | None:
    """One script line -> its step (None for a blank line); InputError names the line."""

    def bad(why: str) -> InputError:
        return InputError(f"line {number}: {why}")

    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise bad(f"not valid UTF-8 (byte {exc.start})") from None
    if not text.strip():
        return None
    try:
        value = json.loads(text, object_pairs_hook=_unique_keys)
    except _DuplicateKey as exc:
        raise bad(f"key {exc.args[0]!r} given twice") from None
    except RecursionError:  # a line of 1 MiB can nest arrays far deeper than the parser goes
        raise bad("not valid JSON: nested too deeply") from None
    except ValueError as exc:
        # json.JSONDecodeError: its msg and column, without json's "line 1" (one line here).
        where = f" (column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise bad(f"not valid JSON: {getattr(exc, 'msg', exc)}{where}") from None
    if not isinstance(value, dict):
        raise bad(f"a JSON object is expected, not {_kind(value)}")
    unknown = [key for key in value if key not in ACTIONS and key != "reason"]
    if unknown:
        raise bad(f"unknown key {unknown[0]!r} (actions: {', '.join(ACTIONS)})")
    actions = [key for key in value if key in ACTIONS]
    if len(actions) != 1:
        if not actions:
            raise bad(f"no action (one of: {', '.join(ACTIONS)})")
        raise bad(f"{len(actions)} actions in one object ({', '.join(actions)}): one per line")
    action = actions[0]
    if "reason" in value and action != "close":
        raise bad('"reason" goes with "close" only')
    arg = value[action]

    def expect_type(kind: type | tuple[type, ...], name: str) -> None:
        # bool is an int in Python, never in a script.
        if isinstance(arg, bool) or not isinstance(arg, kind):
            raise bad(f'"{action}" takes {name}, not {_kind(arg)}')

    if action == "text":
        expect_type(str, "a string")
        if _lone_surrogate(arg):
            raise bad('"text" has a lone surrogate (\\ud800-\\udfff): not sendable as UTF-8')
        return Send(arg)
    if action in ("binary", "base64"):
        expect_type(str, "a string")
        encoding = "hex" if action == "binary" else "base64"
        where = f'line {number}: "{action}"'
        raw_arg = arg.encode("utf-8", "surrogatepass")
        return Send(decode_message(raw_arg, binary=True, encoding=encoding, where=where))
    if action == "ping":
        expect_type(str, "a string")
        if _lone_surrogate(arg):
            raise bad('"ping" has a lone surrogate (\\ud800-\\udfff): not sendable as UTF-8')
        payload = arg.encode("utf-8")
        if len(payload) > 125:  # RFC 6455 5.5: a control frame's payload
            raise bad(f'"ping" payload is {len(payload)} bytes: at most 125')
        return Ping(payload)
    if action == "sleep":
        expect_type((int, float), "a number of seconds")
        # An int too large for a float (1 followed by 400 zeros) is no number of seconds either.
        if not (0 <= arg <= sys.float_info.max):  # also refuses NaN and Infinity
            raise bad(f'"sleep" takes seconds >= 0, not {_kind(arg)}')
        return Sleep(float(arg))
    if action == "expect":
        expect_type(int, "a whole number")
        if arg < 1:
            raise bad(f'"expect" takes a count >= 1, not {arg}')
        return Wait(number, expect=arg)
    if action == "until":
        expect_type(str, "a regular expression (a string)")
        try:
            return Wait(number, until=re.compile(arg))
        except re.error as exc:
            raise bad(f'"until": invalid regular expression: {exc}') from None
    assert action == "close"
    expect_type(int, "a close code")
    reason = value.get("reason", "")
    if not isinstance(reason, str):
        raise bad(f'"reason" takes a string, not {_kind(reason)}')
    if problem := close_frame_problem(arg, reason):
        raise bad(problem[1])
    return Close(arg, reason)


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def _kind(value: Any) -> str:
    """What a JSON value is, for an error: a number is shown as itself."""
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    shown = names.get(type(value)) or json.dumps(value)
    return shown if len(shown) <= 24 else f"{shown[:20]}... ({len(shown)} characters)"


def _lone_surrogate(text: str) -> bool:
    return any("\ud800" <= char <= "\udfff" for char in text)


async def script_steps(reader: InputReader, ended: asyncio.Event) -> AsyncIterator[Step]:
    """The steps of the script ``reader`` reads, in order, each parsed when reached; stops when
    ``ended`` is set (the connection is over). A line is at most ``STREAM_AFTER`` bytes: the
    reader hands a longer one over as a stream, refused here (the memory stays bounded)."""
    while (batch := await next_batch(reader, ended)) is not None:
        if isinstance(batch, OSError):
            raise InputError(f"cannot read stdin: {batch}")
        for raw in batch:
            reader.count += 1
            if isinstance(raw, StreamedMessage):
                raise InputError(f"line {reader.count}: longer than {STREAM_AFTER} bytes")
            step = parse_line(raw, reader.count)
            if step is not None:
                yield step
