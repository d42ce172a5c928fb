"""``wschan send --input jsonl`` (issue 14, item 4): the real executable runs a JSON Lines script
against a hand-written server on 127.0.0.1 that records every frame the client put on the wire
(opcode and unmasked payload), in order with what the server itself sent."""

from __future__ import annotations

import asyncio
import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from .helpers import RawServer, frame
from .send_helpers import LoopThread, err_line, wschan

pytestmark = pytest.mark.timeout(60)

TEXT, BINARY, CLOSE, PING, PONG = 1, 2, 8, 9, 10


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One client frame: (opcode, unmasked payload). The client's messages here are small
    enough to be single frames."""
    first, second = await reader.readexactly(2)
    size = second & 0x7F
    if size == 126:
        (size,) = struct.unpack("!H", await reader.readexactly(2))
    elif size == 127:
        (size,) = struct.unpack("!Q", await reader.readexactly(8))
    mask = await reader.readexactly(4) if second & 0x80 else b"\0\0\0\0"
    data = await reader.readexactly(size)
    return first & 0x0F, bytes(b ^ mask[i % 4] for i, b in enumerate(data))


@dataclass
class Recorder:
    """The server's script: records ("in", opcode, payload) for each client frame and
    ("out", payload) for each reply, answers Pings and the Close. ``replies`` maps a text
    message to the texts sent back for it (after ``delay`` seconds); others get no reply."""

    replies: dict[str, list[str]] = field(default_factory=dict)
    delay: float = 0.0
    close_after: str | None = None  # after receiving this text, close with 1000
    log: list[tuple[str, int, bytes]] = field(default_factory=list)

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Frames are read and logged as they arrive; replies go out from tasks of their own, so
        # the log shows when the client sent each frame relative to the replies.
        answering: set[asyncio.Task[None]] = set()
        while True:
            opcode, payload = await read_frame(reader)
            self.log.append(("in", opcode, payload))
            if opcode == PING:
                writer.write(frame(PONG, payload))
            elif opcode == CLOSE:
                await asyncio.gather(*answering)
                writer.write(frame(CLOSE, payload[:2]))
                await writer.drain()
                return
            elif opcode == TEXT and payload.decode() == self.close_after:
                writer.write(frame(CLOSE, struct.pack("!H", 1000)))
            elif opcode == TEXT and payload.decode() in self.replies:
                answer = self._answer(writer, self.replies[payload.decode()])
                answering.add(asyncio.ensure_future(answer))
            await writer.drain()

    async def _answer(self, writer: asyncio.StreamWriter, texts: list[str]) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)  # a slow server: the client must wait for it
        for text in texts:
            self.log.append(("out", TEXT, text.encode()))
            writer.write(frame(TEXT, text.encode()))
        await writer.drain()

    def frames(self, kind: str = "in") -> list[tuple[int, bytes]]:
        return [(op, data) for k, op, data in self.log if k == kind]


@pytest.fixture
def loop() -> Iterator[LoopThread]:
    with LoopThread() as thread:
        yield thread


def serve(loop: LoopThread, recorder: Recorder) -> str:
    server = RawServer(recorder)
    loop.call(server.__aenter__())
    return server.url


def script(*lines: object) -> str:
    return "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines)


def close_frame(code: int, reason: str = "") -> tuple[int, bytes]:
    return CLOSE, struct.pack("!H", code) + reason.encode()


# ---------------------------------------------------------------------- each action


def test_every_action_reaches_the_wire_as_asked(loop: LoopThread) -> None:
    rec = Recorder(replies={"hi": ["hello"]})
    url = serve(loop, rec)
    result = wschan(
        "send",
        url,
        "--input",
        "jsonl",
        "--json",
        input=script(
            {"text": "hi"},
            {"expect": 1},
            {"binary": "00ff10"},
            {"base64": "AAEC/w=="},
            {"ping": "are you there"},
            {"sleep": 0.05},
            {"text": "déjà"},
            {"close": 4001, "reason": "script done"},
        ),
    )
    assert result.returncode == 0, err_line(result)
    assert rec.frames() == [
        (TEXT, b"hi"),
        (BINARY, b"\x00\xff\x10"),
        (BINARY, b"\x00\x01\x02\xff"),
        (PING, b"are you there"),
        (TEXT, "déjà".encode()),
        close_frame(4001, "script done"),
    ]
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["type"] for r in records] == ["text", "close"]
    assert records[0]["data"] == "hello"
    assert records[1]["code"] == 4001 and records[1]["by"] == "local"


def test_without_close_the_script_ends_with_close_code_and_the_usual_wait(
    loop: LoopThread,
) -> None:
    rec = Recorder(replies={"a": ["A"], "b": ["B"]})
    url = serve(loop, rec)
    result = wschan(
        "send", url, "--input", "jsonl", "--close-code", "4002",
        input=script({"text": "a"}, "", {"text": "b"}),
    )  # fmt: skip
    assert result.returncode == 0, err_line(result)
    assert result.stdout == b"A\nB\n"  # the default rule: as many replies as messages
    assert rec.frames() == [(TEXT, b"a"), (TEXT, b"b"), close_frame(4002)]


def test_lines_after_close_are_not_read(loop: LoopThread) -> None:
    rec = Recorder()
    url = serve(loop, rec)
    result = wschan(
        "send", url, "--input", "jsonl",
        input=script({"close": 1000}, {"text": "never"}, "not even json"),
    )  # fmt: skip
    assert result.returncode == 0, err_line(result)
    assert rec.frames() == [close_frame(1000)]


# ---------------------------------------------------------------------- waits mid-script


def test_expect_waits_for_the_reply_before_the_next_line_goes_out(loop: LoopThread) -> None:
    rec = Recorder(replies={"login": ["ok"], "get": ["item 1", "item 2"]}, delay=0.3)
    url = serve(loop, rec)
    result = wschan(
        "send", url, "--input", "jsonl",
        input=script(
            {"text": "login"}, {"expect": 1}, {"text": "get"}, {"expect": 2}, {"text": "bye"},
            {"close": 1000},
        ),
    )  # fmt: skip
    assert result.returncode == 0, err_line(result)
    # The server's timeline: each request arrived only after the replies it waited for.
    assert [(kind, data) for kind, _, data in rec.log] == [
        ("in", b"login"),
        ("out", b"ok"),
        ("in", b"get"),
        ("out", b"item 1"),
        ("out", b"item 2"),
        ("in", b"bye"),
        ("in", struct.pack("!H", 1000)),
    ]
    assert result.stdout == b"ok\nitem 1\nitem 2\n"


def test_until_waits_for_a_matching_reply(loop: LoopThread) -> None:
    rec = Recorder(replies={"go": ["working", "still working", "ready: 42"]}, delay=0.3)
    url = serve(loop, rec)
    result = wschan(
        "send", url, "--input", "jsonl",
        input=script({"text": "go"}, {"until": r"^ready: \d+$"}, {"text": "next"}),
    )  # fmt: skip
    assert result.returncode == 0, err_line(result)
    assert [data for kind, _, data in rec.log if data != struct.pack("!H", 1000)] == [
        b"go",
        b"working",
        b"still working",
        b"ready: 42",
        b"next",
    ]


def test_a_reply_that_came_before_the_wait_line_counts(loop: LoopThread) -> None:
    # No delay: the reply may arrive before "until" is even read; it must still count.
    rec = Recorder(replies={"go": ["ready"]})
    url = serve(loop, rec)
    result = wschan(
        "send", url, "--input", "jsonl", "--timeout", "10",
        input=script({"text": "go"}, {"sleep": 0.2}, {"until": "ready"}, {"close": 1000}),
    )  # fmt: skip
    assert result.returncode == 0, err_line(result)
    assert rec.frames()[-1] == close_frame(1000)


@pytest.mark.parametrize(
    ("first", "second"),
    [({"expect": 1}, {"expect": 1}), ({"until": "ready"}, {"until": "^two"})],
)
def test_each_reply_counts_for_one_wait_only_even_when_they_come_together(
    loop: LoopThread, first: dict[str, object], second: dict[str, object]
) -> None:
    # Both replies arrive in one read: the one after the goal was met is the next wait's.
    rec = Recorder(replies={"go": ["one ready", "two ready"]})
    url = serve(loop, rec)
    result = wschan(
        "send", url, "--input", "jsonl", "--wait", "2",
        input=script({"text": "go"}, first, second, {"close": 1000}),
    )  # fmt: skip
    assert result.returncode == 0, err_line(result)
    assert result.stdout == b"one ready\ntwo ready\n"


def test_expect_on_the_command_line_counts_from_the_scripts_last_wait(loop: LoopThread) -> None:
    rec = Recorder(replies={"a": ["A"], "b": ["B1", "B2"]})
    url = serve(loop, rec)
    result = wschan(
        "send", url, "--input", "jsonl", "--expect", "1", "--wait", "2",
        input=script({"text": "a"}, {"expect": 1}, {"text": "b"}),
    )  # fmt: skip
    assert result.returncode == 0, err_line(result)
    assert result.stdout == b"A\nB1\n"  # "A" met line 2; --expect 1 is then met by B1


def test_a_close_line_sends_its_close_frame_even_with_abrupt(loop: LoopThread) -> None:
    rec = Recorder()
    url = serve(loop, rec)
    result = wschan(
        "send", url, "--input", "jsonl", "--abrupt",
        input=script({"text": "x"}, {"close": 3001}),
    )  # fmt: skip
    assert result.returncode == 0, err_line(result)
    assert rec.frames() == [(TEXT, b"x"), close_frame(3001)]


def test_a_ping_without_its_pong_ends_the_run_after_ping_timeout(loop: LoopThread) -> None:
    async def no_pong(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            opcode, payload = await read_frame(reader)
            log.append((opcode, payload))
            if opcode == CLOSE:
                writer.write(frame(CLOSE, payload[:2]))
                await writer.drain()
                return

    log: list[tuple[int, bytes]] = []
    server = RawServer(no_pong)
    loop.call(server.__aenter__())
    result = wschan(
        "send", server.url, "--input", "jsonl", "--ping-timeout", "0.3",
        input=script({"ping": "hello?"}, {"text": "never sent"}),
    )  # fmt: skip
    assert result.returncode == 1
    assert "no Pong from 127.0.0.1" in err_line(result) and "0.3s" in err_line(result)
    assert log[0] == (PING, b"hello?") and (TEXT, b"never sent") not in log


def test_a_wait_that_gets_nothing_fails_after_wait_seconds_and_sends_nothing_more(
    loop: LoopThread,
) -> None:
    rec = Recorder()
    url = serve(loop, rec)
    result = wschan(
        "send", url, "--input", "jsonl", "--wait", "0.3",
        input=script({"text": "hello?"}, {"expect": 1}, {"text": "never sent"}),
    )  # fmt: skip
    assert result.returncode == 124
    assert err_line(result) == (
        "wschan: no reply for 0.3s (--wait): after 0 of 1 expected replies (line 2)"
    )
    assert rec.frames() == [(TEXT, b"hello?"), close_frame(1000)]


def test_the_server_closing_during_a_wait_says_which_line_waited(loop: LoopThread) -> None:
    rec = Recorder(close_after="bye")
    url = serve(loop, rec)
    result = wschan(
        "send", url, "--input", "jsonl",
        input=script({"text": "bye"}, {"until": "never"}, {"text": "never sent"}),
    )  # fmt: skip
    assert result.returncode == 1
    assert err_line(result) == (
        "wschan: the server closed the connection (1000 normal closure) before a reply "
        "matched \"until\" 'never' of line 2 (0 received)"
    )
    assert rec.frames()[0] == (TEXT, b"bye")
    assert (TEXT, b"never sent") not in rec.frames()


def test_sleep_is_bounded_by_timeout(loop: LoopThread) -> None:
    rec = Recorder()
    url = serve(loop, rec)
    result = wschan(
        "send", url, "--input", "jsonl", "--timeout", "1",
        input=script({"text": "before"}, {"sleep": 60}, {"text": "after"}),
    )  # fmt: skip
    assert result.returncode == 124
    assert err_line(result).startswith("wschan: timed out after 1s (--timeout): 1 sent")
    assert (TEXT, b"before") in rec.frames() and (TEXT, b"after") not in rec.frames()


# ---------------------------------------------------------------------- bad lines

BAD_LINES = [
    ("not json", "not valid JSON: Expecting value (column 1)"),
    ('{"text": "a"', "not valid JSON: Expecting ',' delimiter (column 13)"),
    ("[1, 2]", "a JSON object is expected, not an array"),
    ("{}", "no action (one of: text, binary, base64, ping, sleep, expect, until, close)"),
    ('{"txt": "a"}', "unknown key 'txt' (actions: text, binary, base64, ping, sleep"),
    ('{"text": "a", "ping": "b"}', "2 actions in one object (text, ping): one per line"),
    ('{"text": "a", "text": "b"}', "key 'text' given twice"),
    ('{"text": 5}', '"text" takes a string, not 5'),
    ('{"text": "\\ud800"}', '"text" has a lone surrogate'),
    ('{"binary": "0g"}', '"binary" is not valid hex'),
    ('{"base64": "abc"}', '"base64" is not valid base64'),
    ('{"ping": "' + "p" * 126 + '"}', '"ping" payload is 126 bytes: at most 125'),
    ('{"sleep": -1}', '"sleep" takes seconds >= 0, not -1'),
    ('{"sleep": true}', '"sleep" takes a number of seconds, not a boolean'),
    ('{"sleep": 1' + "0" * 400 + "}", '"sleep" takes seconds >= 0, not 1000000000000'),
    ("[" * 100_000 + "]" * 100_000, "not valid JSON: nested too deeply"),
    ('{"expect": 0}', '"expect" takes a count >= 1, not 0'),
    ('{"expect": 1.5}', '"expect" takes a whole number, not 1.5'),
    ('{"until": "("}', '"until": invalid regular expression: missing ), unterminated'),
    ('{"close": 1006}', "1006 cannot be sent in a Close frame: use 1000-1003, 1007-1014"),
    ('{"close": 1000, "reason": 7}', '"reason" takes a string, not 7'),
    ('{"close": "1000"}', '"close" takes a close code, not a string'),
    ('{"text": "a", "reason": "x"}', '"reason" goes with "close" only'),
    (b"\xff", "not valid UTF-8 (byte 0)"),
]


@pytest.mark.parametrize(("line", "why"), BAD_LINES, ids=[str(i) for i in range(len(BAD_LINES))])
def test_a_bad_line_is_one_error_naming_it_after_what_came_before_went_out(
    loop: LoopThread, line: str | bytes, why: str
) -> None:
    rec = Recorder()
    url = serve(loop, rec)
    good = script({"text": "one"}, "", {"binary": "00ff"}).encode()  # line 2 is blank
    bad = line if isinstance(line, bytes) else line.encode()
    result = wschan(
        "send", url, "--input", "jsonl",
        input=good + bad + b"\n" + script({"text": "never sent"}).encode(),
    )  # fmt: skip
    assert result.returncode == 2
    stderr = result.stderr.decode()
    assert stderr.count("\n") == 1 and "Traceback" not in stderr
    assert stderr.startswith(f"wschan: line 4: {why}"), stderr
    assert stderr.rstrip().endswith("; nothing after it was sent")
    assert rec.frames() == [(TEXT, b"one"), (BINARY, b"\x00\xff"), close_frame(1000)]


def test_a_line_over_the_limit_is_refused_in_bounded_memory(loop: LoopThread) -> None:
    rec = Recorder()
    url = serve(loop, rec)
    huge = b'{"text": "' + b"x" * (2 << 20) + b'"}\n'
    result = wschan(
        "send", url, "--input", "jsonl", input=script({"text": "first"}).encode() + huge
    )
    assert result.returncode == 2
    assert err_line(result).startswith("wschan: line 2: longer than 1048576 bytes")
    assert rec.frames() == [(TEXT, b"first"), close_frame(1000)]


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (["hello"], "MESSAGE"),
        (["--file", "-"], "--file"),
        (["--hex"], "--hex"),
        (["-0"], "--null"),
    ],
)
def test_jsonl_takes_the_whole_script_from_stdin(extra: list[str], named: str) -> None:
    result = wschan("send", "ws://127.0.0.1:9/", "--input", "jsonl", *extra)
    assert result.returncode == 2
    assert f"--input jsonl reads the whole script from stdin: drop {named}" in err_line(result)
