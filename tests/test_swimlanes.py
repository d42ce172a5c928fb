"""The swimlane picture of real runs fits 80 and 120 columns: one line per event (two at most for
a long close reason), no word broken, no number cut, each glyph in its party's lane (issue 16)."""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass, replace

import pytest
from rich.cells import cell_len
from rich.console import Console

from wschan_cli.channel import Event, What
from wschan_cli.render.swimlanes import (
    FALSE_BAR,
    TRUE_BAR,
    Mark,
    Swimlanes,
    glyph_of,
    lane_id,
    lanes_of,
)
from wschan_cli.render.transitions import describe, who
from wschan_cli.server import EmbeddedServer
from wschan_cli.trace.scenarios import SCENARIOS, run_scenario


def real_runs(senders: int) -> dict[str, list[Event]]:
    async def main() -> dict[str, list[Event]]:
        runs = {}
        async with EmbeddedServer() as srv:
            for name in SCENARIOS:
                run = await run_scenario(srv.url, name, senders=senders, timeout=10)
                assert not run.hung
                runs[name] = run.events
        return runs

    return asyncio.run(main())


@pytest.fixture(scope="module")
def runs() -> dict[int, dict[str, list[Event]]]:
    return {senders: real_runs(senders) for senders in (2, 6)}


def render(events: list[Event], width: int, mark: Mark | None = None) -> list[str]:
    console = Console(record=True, width=width, color_system=None, file=io.StringIO())
    console.print(Swimlanes(events, "a title long enough to wrap " * 4, mark))
    return console.export_text().splitlines()


@dataclass
class Row:
    seq: int
    ms: str
    flags: str
    lanes: str
    text: list[str]


def parse(lines: list[str]) -> tuple[str, list[Row]]:
    """The header and the event rows (an event's continuation lines joined to it)."""
    at = next(i for i, line in enumerate(lines) if line.rstrip().endswith("event"))
    header = lines[at]
    text_at = header.rindex("event")
    flags_at = header.index("S E")
    rows: list[Row] = []
    for line in lines[at + 1 :]:
        bars = (TRUE_BAR, FALSE_BAR)
        if len(line) < text_at or line[flags_at] not in bars or line[flags_at + 2] not in bars:
            break  # the legend
        head = line[:flags_at].split()
        text = line[text_at:].strip()
        if head and head[-2].isdigit():
            rows.append(Row(int(head[-2]), head[-1], line[flags_at : flags_at + 3], "", [text]))
            rows[-1].lanes = line[flags_at + 5 : text_at]
        else:
            rows[-1].text.append(text)
    return header, rows


def check(events: list[Event], width: int, most_lines: int) -> list[str]:
    lines = render(events, width)
    assert all(cell_len(line) <= width for line in lines), [
        line for line in lines if cell_len(line) > width
    ]
    header, rows = parse(lines)
    assert [r.seq for r in rows] == [e.seq for e in events]
    start = events[0].time
    lanes = lanes_of(events)
    keys = header[header.index("S E") + 5 : header.rindex("event")]
    for event, row in zip(events, rows, strict=True):
        # The words, joined at the line breaks with one space, are the event's own: a word
        # broken across lines would come back with a space inside it.
        assert " ".join(row.text) == f"{who(event)} {describe(event)}"
        assert len(row.text) <= most_lines, row
        assert row.ms == f"{(event.time - start) * 1000:.2f}"  # the number whole
        assert row.flags == " ".join(
            TRUE_BAR if flag else FALSE_BAR for flag in (event.sending, event.established)
        )
        column = keys.index(lanes[lane_id(event.party)].key)
        assert row.lanes[column] == glyph_of(event)[0]
    legend = "\n".join(lines[lines.index(header) + 1 + sum(len(r.text) for r in rows) :])
    for glyph, _word in {glyph_of(e) for e in events}:
        assert f"{glyph} " in legend
    for lane in lanes.values():
        assert f"{lane.key} {lane.name}" in legend
    return lines


@pytest.mark.timeout(60)
@pytest.mark.parametrize("senders", [2, 6])
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_real_runs_fit_80_columns_one_line_per_event(
    runs: dict[int, dict[str, list[Event]]], scenario: str, senders: int
) -> None:
    events = runs[senders][scenario]
    closes = [e for e in events if e.what is What.CLOSED and e.detail.get("reason")]
    assert closes  # a real close reason is among them
    lines = check(events, 80, most_lines=2)
    _, rows = parse(lines)
    long_rows = [r for r in rows if len(r.text) > 1]
    assert {r.seq for r in long_rows} <= {e.seq for e in closes}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_at_120_columns_the_extra_width_goes_to_the_words(
    runs: dict[int, dict[str, list[Event]]], scenario: str
) -> None:
    check(runs[2][scenario], 120, most_lines=1)


@pytest.mark.timeout(60)
def test_too_narrow_for_the_lanes_the_words_stay_whole(
    runs: dict[int, dict[str, list[Event]]],
) -> None:
    events = runs[6]["race"]
    lines = render(events, 44)
    assert all(cell_len(line) <= 44 for line in lines)
    header, rows = parse(lines)
    assert header.split() == ["#", "ms", "S", "E", "event"]  # no room for lanes: left out
    for event, row in zip(events, rows, strict=True):
        if event.what is What.CLOSED:
            assert len(row.text) <= 2 and " ".join(row.text).endswith('…" by peer')
        else:
            assert " ".join(row.text) == f"{who(event)} {describe(event)}"


@pytest.mark.timeout(60)
def test_a_close_reason_too_long_for_two_lines_is_shortened_at_a_word(
    runs: dict[int, dict[str, list[Event]]],
) -> None:
    events = list(runs[2]["deinit-first"])
    at = next(i for i, e in enumerate(events) if e.what is What.CLOSED)
    reason = " ".join(f"word{i:03d}" for i in range(15))  # 119 bytes, the most a Close holds
    events[at] = replace(events[at], detail={**events[at].detail, "reason": reason})
    _, rows = parse(render(events, 80))
    text = " ".join(rows[at].text)
    assert len(rows[at].text) == 2
    assert text.startswith(f'{who(events[at])} closed 1006 "word000 word001')
    assert text.endswith('…" by peer')
    shown = text.split('"')[1].removesuffix("…").split(" ")
    assert shown == reason.split(" ")[: len(shown)]  # whole words, in order


@pytest.mark.timeout(60)
def test_a_violated_invariant_is_marked_at_its_step(
    runs: dict[int, dict[str, list[Event]]],
) -> None:
    events = runs[2]["terminate-first"]
    fall = next(e for e in events if e.what is What.ESTABLISHED and not e.established)
    lines = render(events, 80, Mark(fall.seq, "6", "established fell twice"))
    assert all(cell_len(line) <= 80 for line in lines)
    header, rows = parse(lines)
    assert [r.seq for r in rows] == [e.seq for e in events]
    at = next(i for i, line in enumerate(lines) if line.startswith("✗"))
    assert line_seq(lines[at]) == fall.seq
    assert sum(line.startswith("✗") for line in lines) == 1
    marked = next(r for r in rows if r.seq == fall.seq)
    assert marked.text == [f"{who(fall)} {describe(fall)}", "§6 violated: established fell twice"]
    assert lines[at + 1].index("§") == header.rindex("event")  # under the event's words


def line_seq(line: str) -> int:
    return int(line.split()[1])


@pytest.mark.timeout(60)
def test_a_live_view_keeps_to_the_screen_with_the_latest_events(
    runs: dict[int, dict[str, list[Event]]],
) -> None:
    events = runs[6]["deinit-first"]
    console = Console(record=True, width=80, color_system=None, file=io.StringIO())
    console.print(Swimlanes(events, "live", height=24))
    lines = console.export_text().splitlines()
    assert len(lines) <= 24
    shown = [int(line.split()[0]) for line in lines if line[:3].strip().isdigit()]
    assert shown == [e.seq for e in events[-len(shown) :]] and len(shown) >= 8
    assert f"⋮ {len(events) - len(shown)} earlier events" in lines
    assert lines[-1].endswith("E established (█ 1, │ 0)")  # the legend stays
