"""No message lost: 2,000 lines piped into ``wschan send`` give 2,000 replies, in order, a clean
close and exit 0, twenty times in a row."""

from __future__ import annotations

import json

import pytest

from .send_helpers import err_line, wschan
from .servers import ThreadedServer

LINES = [f"line {i:04d} " + "x" * (i % 50) for i in range(2000)]
PIPED = ("\n".join(LINES) + "\n").encode()


@pytest.mark.timeout(180)
def test_2000_lines_give_2000_replies_in_order_twenty_times() -> None:
    with ThreadedServer() as server:
        for run in range(20):
            result = wschan("send", server.url, input=PIPED, timeout=60)
            assert result.returncode == 0, (run, err_line(result))
            replies = result.stdout.decode().split("\n")
            assert replies[-1] == ""
            assert replies[:-1] == LINES, f"run {run}: {len(replies) - 1} replies"
            assert result.stderr == b"", run
            server.wait_ended(run + 1)
        assert server.close_codes == [1000] * 20
        assert server.received == LINES * 20


@pytest.mark.timeout(60)
def test_2000_lines_in_json_end_with_a_clean_close_record() -> None:
    with ThreadedServer() as server:
        result = wschan("send", server.url, "--json", input=PIPED, timeout=60)
    assert result.returncode == 0, err_line(result)
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["data"] for r in records[:-1]] == LINES
    assert records[-1]["type"] == "close" and records[-1]["code"] == 1000
    assert records[-1]["clean"] is True
