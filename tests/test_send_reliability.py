"""``wschan send`` against hostile peers and hostile input (issue 10): every run bounded, one
line on stderr and no traceback, linear in its input.

Each test runs the real executable against a server on 127.0.0.1. The tests whose trigger is a
signal or a timeout repeat it 20 times in one test: the bugs they pin showed up about one run in
four.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from wschan_cli.server import Behaviour

from .send_helpers import LoopThread, SilentServer, clean_env, err_line, wschan
from .servers import ThreadedServer

RUNS = 20


def assert_one_line(stderr: bytes, run: int) -> str:
    """stderr is one "wschan: ..." line: no traceback, no thread's or asyncio's report."""
    text = stderr.decode(errors="replace")
    lines = text.splitlines()
    assert len(lines) == 1 and lines[0].startswith("wschan: "), f"run {run}:\n{text}"
    return lines[0]


class Feeder:
    """Writes lines of ``width`` bytes (newline included) into a process's stdin, from a
    thread, until the pipe breaks."""

    def __init__(self, proc: subprocess.Popen[bytes], width: int = 2) -> None:
        self.proc = proc
        self.block = (b"y" * (width - 1) + b"\n") * max(65536 // width, 1)
        self.written = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        assert self.proc.stdin is not None
        try:
            while True:
                self.proc.stdin.write(self.block)
                self.written += len(self.block)
        except (BrokenPipeError, OSError, ValueError):
            pass

    def wait_written(self, count: int, limit: float) -> None:
        """Until ``count`` bytes went in, or the pipe stalled (the client stopped reading)."""
        deadline = time.monotonic() + limit
        while self.written < count and time.monotonic() < deadline:
            time.sleep(0.005)


def wait_until(condition: Callable[[], bool], limit: float) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, f"not within {limit}s"
        time.sleep(0.005)


def popen_send(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "wschan_cli", "send", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=clean_env(),
    )


def finish(proc: subprocess.Popen[bytes], limit: float = 15.0) -> bytes:
    """Its stderr once it exits (stdin stays open: its end is not what ends the run)."""
    try:
        proc.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"still running after {limit}s") from None
    assert proc.stderr is not None
    err = proc.stderr.read()
    proc.stderr.close()
    return err


@pytest.mark.timeout(240)
def test_ctrl_c_during_a_large_piped_send_is_one_line_and_130_twenty_times() -> None:
    with LoopThread() as loop:
        server = loop.call(SilentServer(reads=False).start())
        for run in range(RUNS):
            proc = popen_send(server.url, "--write-timeout", "0.5", "--close-timeout", "0.5")
            feeder = Feeder(proc)
            wait_until(lambda n=run: server.upgraded > n, limit=10.0)
            # Interrupt at different depths of the backlog: before, while and after the
            # stdin queue fills up behind the stalled socket.
            feeder.wait_written((run % 4) * (1 << 20) + (1 << 16), limit=1.5)
            proc.send_signal(signal.SIGINT)
            err = finish(proc)
            line = assert_one_line(err, run)
            assert proc.returncode == 130, (run, line)
            assert "interrupted" in line, (run, line)


@pytest.mark.timeout(240)
def test_a_write_timeout_is_one_line_exit_5_naming_the_option_twenty_times() -> None:
    with LoopThread() as loop:
        server = loop.call(SilentServer(reads=False).start())
        for run in range(RUNS):
            start = time.monotonic()
            proc = popen_send(server.url, "--write-timeout", "0.3", "--close-timeout", "0.3")
            Feeder(proc, width=1 << 16)  # big messages: the socket buffers fill fast
            err = finish(proc)
            line = assert_one_line(err, run)
            assert proc.returncode == 5, (run, line)
            assert "within 0.3s (--write-timeout)" in line, (run, line)
            # Bounded by the option, not by a fixed 30 s.
            assert time.monotonic() - start < 10, run


@pytest.mark.timeout(120)
def test_a_48_mb_stdin_line_is_sent() -> None:
    # Quadratic splitting took 13.6 s for 40 MB and 21.3 s for 50 MB (issue 10); linear reading
    # and sending of 48 MB takes about a second. No time is asserted here (issue 13: speed is
    # measured by bench/); the line must go out, within the test's own timeout.
    line = b"x" * (48 << 20) + b"\n"
    with LoopThread() as loop:
        server = loop.call(SilentServer().start())
        result = wschan("send", server.url, "--abrupt", "--wait", "0", input=line, timeout=60)
    assert result.returncode == 0, err_line(result)


# ---------------------------------------------------------------------- bounded input (item 2)

#: Runs ARGV with stdin from PATH in a child, then reports that child's peak RSS (kB) and its
#: status on the last stdout line (RUSAGE_CHILDREN of a fresh process: no other run mixed in).
PEAK_RSS = """\
import resource, subprocess, sys
with open(sys.argv[1], "rb") as stdin:
    done = subprocess.run(sys.argv[2:], stdin=stdin, stdout=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, done.returncode)
"""


def peak_run(stdin: str, *args: str, limit: float) -> tuple[int, int, float, str]:
    """``wschan send ARGS`` with ``stdin``: (status, peak RSS in MB, seconds, stderr)."""
    start = time.monotonic()
    measured = subprocess.run(
        [sys.executable, "-c", PEAK_RSS, stdin, sys.executable, "-m", "wschan_cli", "send", *args],
        capture_output=True,
        env=clean_env(),
        timeout=limit,
        check=False,
    )
    took = time.monotonic() - start
    rss_kb, status = measured.stdout.split()[-2:]
    return int(status), int(rss_kb) // 1024, took, measured.stderr.decode(errors="replace")


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("stdin", "args", "bound"),
    [
        ("/dev/null", ("--file", "/dev/zero"), 5),  # issue 10's "Done means"
        ("/dev/zero", ("--file", "-"), 3),
        ("/dev/zero", (), 3),  # stdin without any newline: one endless line
    ],
    ids=["file-dev-zero", "file-stdin", "stdin-line"],
)
def test_an_endless_input_streams_in_constant_memory_until_the_timeout(
    stdin: str, args: tuple[str, ...], bound: int
) -> None:
    with LoopThread() as loop:
        server = loop.call(SilentServer().start())  # takes in everything
        status, rss_mb, took, err = peak_run(
            stdin, server.url, *args, "--timeout", str(bound), limit=60
        )
        streamed = server.bytes_read
    assert status == 124, err
    expected = f"wschan: timed out after {bound}s (--timeout): 0 sent, 0 replies received"
    assert err.strip() == expected
    assert took < bound + 1, f"{took:.2f}s"
    assert rss_mb < 100, f"peak RSS {rss_mb} MB"
    assert streamed > 10 << 20, f"only {streamed} bytes went out while the input was read"


@pytest.mark.timeout(60)
def test_a_file_and_a_long_line_arrive_whole_as_one_message(tmp_path: Path) -> None:
    content = bytes(range(32, 127)) * 40_000  # 3.8 MB of text: several frames when streamed
    path = tmp_path / "big.txt"
    path.write_bytes(content)
    with ThreadedServer(max_size=None) as server:
        from_file = wschan(
            "send", server.url, "--file", str(path), "--max-size", "0", "--raw", timeout=60
        )
        from_stdin = wschan("send", server.url, "--max-size", "0", "--raw", input=content + b"\n")
        server.wait_ended(2)
        received = server.received
    assert from_file.returncode == 0, err_line(from_file)
    assert from_stdin.returncode == 0, err_line(from_stdin)
    assert received == [content.decode()] * 2
    assert from_file.stdout == content + b"\n" and from_stdin.stdout == content + b"\n"


@pytest.mark.timeout(60)
def test_bad_utf8_in_the_middle_of_a_streamed_message_cuts_it_off_with_1011_and_exit_2() -> None:
    piped = b"a" * (2 << 20) + b"\xff" + b"b" * 1000
    with ThreadedServer(max_size=None) as server:
        result = wschan("send", server.url, "--file", "-", input=piped)
        server.wait_ended(1)
        assert server.close_codes == [1011]
    assert result.returncode == 2, err_line(result)
    assert err_line(result) == (
        f"wschan: stdin is not valid UTF-8 (byte {2 << 20}); send bytes with --binary; "
        "the message was cut off: the connection was failed with 1011"
    )


# ---------------------------------------------------------------------- --timeout (item 5)


def start_up_seconds() -> float:
    """How long the interpreter takes to start wschan and exit, here and now: what a bound
    measured from outside the process adds to wschan's own bound."""
    times = []
    for _ in range(3):
        start = time.monotonic()
        subprocess.run(
            [sys.executable, "-m", "wschan_cli", "send", "--help"], capture_output=True, check=True
        )
        times.append(time.monotonic() - start)
    return min(times)


@pytest.mark.timeout(120)
def test_timeout_holds_within_half_a_second_against_a_peer_that_stopped_reading() -> None:
    # Before issue 10: --timeout 5 exited after 6.5 s ("while closing").
    start_up = start_up_seconds()
    with LoopThread() as loop:
        server = loop.call(SilentServer(reads=False).start())
        for run in range(RUNS):
            start = time.monotonic()
            proc = popen_send(server.url, "--timeout", "1")
            Feeder(proc, width=1 << 16)
            err = finish(proc)
            took = time.monotonic() - start
            line = assert_one_line(err, run)
            assert proc.returncode == 124, (run, line)
            assert line.startswith("wschan: timed out after 1s (--timeout): "), (run, line)
            assert took < 1.5 + start_up, f"run {run}: {took:.2f}s for --timeout 1"


# ---------------------------------------------------------------------- a close crossing ours


@pytest.mark.timeout(120)
def test_a_server_close_crossing_ours_after_the_goal_is_a_note_and_exit_0_twenty_times() -> None:
    # The server echoes, then closes with 4001 at once: its Close crosses ours (sent when the
    # --expect goal is met), or comes first. Either way the goal was met (exit 0) and the
    # server's code and reason are reported.
    behaviour = Behaviour(close_after=1, close_code=4001, close_reason="go away")
    with ThreadedServer(behaviour) as server:
        for run in range(RUNS):
            result = wschan("send", server.url, "a", "--expect", "1")
            assert result.returncode == 0, (run, err_line(result))
            assert result.stdout == b"a\n"
            line = assert_one_line(result.stderr, run)
            assert line == 'wschan: the server closed the connection: 4001 (private use) "go away"'


def test_stdin_of_tiny_lines_is_read_ahead_by_a_bounded_number_of_messages() -> None:
    # The reader may be up to QUEUE_BATCHES batches ahead of the sending; a batch was all the
    # messages of one 64 KiB read, so 1-byte lines queued two million objects (`yes | wschan
    # send` against a peer that stops reading peaked at 150 MB). A batch now holds at most
    # BATCH_MESSAGES messages: a pipe of a million lines is not all read ahead.
    import asyncio
    import os

    from wschan_cli.sessions.reader import BATCH_MESSAGES, QUEUE_BATCHES, InputReader

    lines = 1_000_000
    read_fd, write_fd = os.pipe()

    def feed() -> None:
        # The reader closes the pipe's read end at the test's end, with most of it unread.
        with contextlib.suppress(BrokenPipeError), open(write_fd, "wb") as pipe:
            pipe.write(b"a\n" * lines)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()

    async def queued_messages() -> int:
        reader = InputReader(read_fd, close=True)
        reader.start()
        deadline = time.monotonic() + 5  # without the bound: everything is read, never full
        while not reader.queue.full() and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        count = 0
        while not reader.queue.empty():
            batch = reader.queue.get_nowait()
            if not isinstance(batch, list):
                break  # the end of input: everything was read ahead
            count += len(batch)
        return count

    count = asyncio.run(queued_messages())
    assert count < lines, count
    assert count <= QUEUE_BATCHES * BATCH_MESSAGES, count
    assert feeder.is_alive()  # the rest waits in the pipe: the reader stopped reading
