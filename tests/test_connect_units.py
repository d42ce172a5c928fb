"""The pieces of ``wschan connect`` that need no connection: slash-command parsing, the
reconnect delays, and the toolbar's view built from events."""

from __future__ import annotations

import itertools

import pytest

from wschan_cli.channel import Event, Party, What
from wschan_cli.sessions import slash
from wschan_cli.sessions.view import ChannelView


def test_slash_lines_commands_and_the_double_slash_escape() -> None:
    assert slash.parse("hello") == slash.Line("", "hello")
    assert slash.parse("//etc/passwd") == slash.Line("", "/etc/passwd")
    assert slash.parse("/PING  some text ") == slash.Line("ping", "some text")
    assert slash.parse("/") == slash.Line("help", "")
    assert slash.parse(" /quit") == slash.Line("", " /quit")  # only a leading slash counts


def test_close_arguments() -> None:
    assert slash.parse_close("") == (1000, "")
    assert slash.parse_close("4000 bye now") == (4000, "bye now")
    with pytest.raises(ValueError, match="cannot be sent"):
        slash.parse_close("1006")
    with pytest.raises(ValueError, match="not a close code"):
        slash.parse_close("soon")
    with pytest.raises(ValueError, match="123 bytes"):
        slash.parse_close("1000 " + "x" * 124)


def test_reconnect_delays_grow_with_jitter_up_to_the_cap_and_tries_run_out() -> None:
    from wschan_cli.sessions.backoff import Backoff

    for _ in range(50):
        backoff = Backoff(first=0.1, max_delay=1.0, tries=6)
        delays = [backoff.next_delay() for _ in range(6)]
        assert backoff.exhausted
        assert 0.1 <= delays[0] <= 0.2
        assert all(a <= b for a, b in itertools.pairwise(delays))
        assert delays[-1] == 1.0
        backoff.reset()
        assert not backoff.exhausted and backoff.next_delay() <= 0.2


def event(seq: int, what: What, party: str = "send", **detail: object) -> Event:
    return Event(
        seq=seq,
        time=seq / 1000,
        party=Party(party, 1),
        what=what,
        sending=what is What.TAKE,
        established=1,
        state="success",
        holder=Party(party, 1) if what is What.TAKE else None,
        waiters=2 if what is What.TAKE else 0,
        detail=dict(detail),
    )


def test_the_view_takes_its_values_from_events_and_counts_messages_and_rtt() -> None:
    changes = []
    view = ChannelView(on_change=lambda: changes.append(1))
    view(event(1, What.TAKE))
    assert "sending yes (send#1)" in view.toolbar() and "waiters 2" in view.toolbar()
    view(event(2, What.FRAME_OUT, opcode="text", size=7))
    view(event(3, What.RELEASE))
    view(event(4, What.FRAME_IN, "reader", opcode="text", size=5, fin=False))
    view(event(5, What.FRAME_IN, "reader", opcode="cont", size=5, fin=True))
    view(event(10, What.FRAME_OUT, "ping", opcode="ping", size=6))
    view(event(13, What.FRAME_IN, "reader", opcode="pong", size=4, fin=True))
    bar = view.toolbar("reconnect 1/3 in 0.20s")
    assert bar == (
        "established 1 | sending no | waiters 0 | state success | in 1 out 1 | rtt 3.0 ms"
        " | reconnect 1/3 in 0.20s"
    )
    assert len(changes) == 7
    assert "last event    send#1 release (7 events)" in view.lines()
