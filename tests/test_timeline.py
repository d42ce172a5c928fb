"""The trace timeline shows server text as inert data and marks changes of the two flags."""

from __future__ import annotations

from rich.console import Console

from wschan_cli.channel import Event, Party, What
from wschan_cli.render.timeline import Timeline, describe


def event(seq: int, what: What, sending: bool, established: int, **detail: object) -> Event:
    return Event(
        seq,
        seq / 1000,
        Party("deinit"),
        what,
        sending,
        established,
        "error",
        Party("deinit") if sending else None,
        0,
        dict(detail),
    )


def test_a_close_reason_with_escapes_and_markup_is_shown_as_data() -> None:
    reason = "\x1b[2J\x1b[31m[bold red]pwned[/bold red]\r"
    closed = event(1, What.CLOSED, True, 0, code=4000, reason=reason, by="peer")
    text = describe(closed)
    assert "\x1b" not in text and "\\x1b[2J" in text and "\\r" in text
    timeline = Timeline("t")
    timeline.add(closed)
    console = Console(record=True, width=200, color_system=None)
    console.print(timeline.compact())
    console.print(timeline)
    out = console.export_text()
    assert "[bold red]pwned[/bold red]" in out  # markup printed literally, never applied
    assert "\x1b" not in out


def test_each_event_sits_in_its_party_lane_with_the_flags_after_it() -> None:
    timeline = Timeline("t")
    timeline.add(event(1, What.TAKE, True, 1))
    timeline.add(event(2, What.ESTABLISHED, True, 0, before=1))
    timeline.add(event(3, What.RELEASE, False, 0))
    console = Console(record=True, width=200, color_system=None)
    console.print(timeline.compact())
    lines = [
        line.split() for line in console.export_text().splitlines() if line.strip()[:1].isdigit()
    ]
    assert [line[-2:] for line in lines] == [["true", "1"], ["true", "0"], ["false", "0"]]
    assert lines[1][2:5] == ["client.deinit()", "established", "1->0"]


def test_an_event_describes_itself_and_the_view_only_makes_server_text_inert() -> None:
    reason = "bye\x1b[31m"
    closed = event(1, What.CLOSED, False, 0, code=4000, reason=reason, by="peer")
    assert closed.describe(str) == 'closed 4000 "bye\x1b[31m" by peer'  # the data, if asked
    assert "\x1b" not in closed.describe()  # by default even a caller outside render/ is safe
    assert describe(closed) == 'closed 4000 "bye\\x1b[31m" by peer'  # the view escapes it
    waited = Event(2, 0.0, Party("send", 1), What.WAIT, True, 1, "success", Party("deinit"), 2)
    assert waited.describe() == describe(waited) == "wait (2 queued)"
