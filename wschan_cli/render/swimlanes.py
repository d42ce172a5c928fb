"""The shutdown race as swimlanes: a sequence diagram that fits the screen (issue 16).

One line per event: its number and time, ``sending`` and ``established`` as step lines (a filled
bar while true, a thin line while not), one narrow lane per party holding a glyph for what that
party did (a thin bar while it holds the token, a dotted one while it is queued), then the
event's words in the one column that takes the rest of the width. Only that column wraps, at
spaces, so no word is broken and no number cut (one line per event, two at most for a long close
reason); a legend under the lines names the lanes and the glyphs that appear. When the lanes
leave too little room for the words, they are left out.

A view over a list of events and nothing else, so the same picture serves a live run and an
explored schedule; ``mark`` points at the step where an invariant broke.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.containers import Lines
from rich.text import Text

from wschan_cli.channel import Event, Party, PartyKind, What

from .transitions import NAMES, describe, millis, style_of, who

# What each party did, as one glyph and the word the legend gives it. Everything else a party
# does (state changes, connect, the 101) is a dot.
GLYPHS: dict[What, tuple[str, str]] = {
    What.TAKE: ("●", "take"),
    What.WAIT: ("◇", "wait"),
    What.WAKE: ("◆", "wake"),
    What.SIGNAL: ("»", "signal"),
    What.RELEASE: ("○", "release"),
    What.FRAME_OUT: ("▶", "send"),
    What.FRAME_IN: ("◀", "read"),
    What.SHUTDOWN: ("■", "shutdown"),
    What.READER_END: ("⊥", "reader end"),
    What.CLOSED: ("□", "closed"),
    What.ON_CLOSE: ("◎", "on_close"),
    What.LEAVE: ("∅", "leave"),
    What.DONE: ("✓", "done"),
    What.FAIL: ("✗", "failed"),
    What.DISPOSE: ("†", "dispose"),
}
RISE = ("▲", "established 0->1")
FALL = ("▼", "established 1->0")
OTHER = ("·", "other")
HOLDS = ("┃", "holds sending")
QUEUED = ("┆", "queued")
TRUE_BAR = "█"
FALSE_BAR = "│"
FLAGS_KEY = [
    f"S sending ({TRUE_BAR} taken, {FALSE_BAR} free)",
    f"E established ({TRUE_BAR} 1, {FALSE_BAR} 0)",
]
MIN_TEXT = 28  # below this many columns for the words, the lanes are left out
GAP = "  "  # between the parts of a line and between the legend's entries

# The lanes always drawn, in order, with their key; the sends follow, then the other parties,
# one lane per kind (open, ping, auto_reply, ...), as they first appear.
FIXED_LANES = {PartyKind.DEINIT: "D", PartyKind.TERMINATE: "T", PartyKind.READER: "R"}


@dataclass(frozen=True)
class Mark:
    """The step where an invariant of channel-model.md section 5 broke."""

    seq: int
    invariant: str  # its number, as the verdicts and the explorer name it
    message: str


@dataclass(frozen=True)
class Lane:
    key: str  # one or two characters, the lane's header
    name: str  # what the legend calls it


def glyph_of(event: Event) -> tuple[str, str]:
    if event.what is What.ESTABLISHED:
        return RISE if event.established else FALL
    return GLYPHS.get(event.what, OTHER)


def lane_id(party: Party) -> str:
    """Sends have a lane each; the other parties one per kind (a reconnect's terminate#2 is
    still handle_terminate())."""
    return str(party) if party.kind == PartyKind.SEND else party.kind


def lanes_of(events: Sequence[Event]) -> dict[str, Lane]:
    """The lanes, in order, by ``lane_id``; each key is unique."""
    lanes = {kind: Lane(key, NAMES.get(kind, kind)) for kind, key in FIXED_LANES.items()}
    for n in sorted({e.party.n for e in events if e.party.kind == PartyKind.SEND}):
        lanes[f"send#{n}"] = Lane(str(n), f"send#{n}")
    for e in events:
        kind = e.party.kind
        if kind not in lanes and kind != PartyKind.SEND:
            taken = {lane.key for lane in lanes.values()}
            key = next((k for k in (kind[:1].upper(), kind[:2].title()) if k not in taken), kind)
            lanes[kind] = Lane(key, kind)
    return lanes


@dataclass(frozen=True)
class Swimlanes:
    """A rich renderable: ``console.print(Swimlanes(events, title, mark))``."""

    events: Sequence[Event]
    title: str = ""
    mark: Mark | None = None
    height: int | None = None  # at most this many lines: the earliest events give way

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        events = list(self.events)
        title = Text(self.title, style="bold").wrap(console, options.max_width, overflow="fold")
        header, body = _table(events, options.max_width, self.mark, console)
        legend = list(_legend(events, header.lanes, options.max_width, console))
        if self.height is not None:
            room = self.height - len(title) - 1 - len(legend) - 1  # 1: the "earlier" line
            dropped = 0
            while body and sum(map(len, body)) > room:
                body.pop(0)
                dropped += 1
            if dropped:
                shown = Text(f"⋮ {dropped} earlier events", style="dim")
                body.insert(0, [shown])
        yield from title if self.title else []
        yield header.line
        for rows in body:
            yield from rows
        yield from legend


@dataclass
class _Header:
    line: Text
    lanes: dict[str, Lane]


def _table(
    events: list[Event], width: int, mark: Mark | None, console: Console
) -> tuple[_Header, list[list[Text]]]:
    """The header and, for each event, its lines, none wider than ``width``."""
    lanes = lanes_of(events)
    start = events[0].time if events else 0.0
    seqs = [str(e.seq) for e in events]
    times = [millis(e, start) for e in events]
    seq_w = max(map(len, [*seqs, "#"]))
    ms_w = max(map(len, [*times, "ms"]))
    lane_w = max(len(lane.key) for lane in lanes.values()) + 1
    marked = mark is not None and any(e.seq == mark.seq for e in events)
    left = ("  " if marked else "") + " " * seq_w + " " + " " * ms_w + GAP + "S E" + GAP
    text_w = width - len(left) - lane_w * len(lanes)
    if text_w < MIN_TEXT:
        lanes, text_w = {}, width - len(left)
    text_w = max(text_w, 1)

    header = Text(" " * (2 if marked else 0), style="dim")
    header.append(f"{'#':>{seq_w}} {'ms':>{ms_w}}{GAP}S E{GAP}", style="dim")
    header.append("".join(f"{lane.key:<{lane_w}}" for lane in lanes.values()), style="dim")
    header.append("event", style="dim")

    body: list[list[Text]] = []
    queued: set[str] = set()
    before: Event | None = None
    for event, seq, ms in zip(events, seqs, times, strict=True):
        lane = lane_id(event.party)
        if event.what is What.WAIT:
            queued.add(lane)
        elif event.what is What.WAKE:
            queued.discard(lane)
        holder = lane_id(event.holder) if event.holder else None
        rows = list(_words(event, text_w, console))
        is_marked = mark is not None and event.seq == mark.seq
        if mark is not None and is_marked:
            note = Text(f"§{mark.invariant} violated: {mark.message}", style="bold red")
            rows += note.wrap(console, text_w, overflow="fold")
        body.append([])
        for i, row in enumerate(rows):
            line = Text()
            if marked:
                line.append("✗ " if is_marked and i == 0 else "  ", style="bold red")
            line.append(f"{seq if i == 0 else '':>{seq_w}} {ms if i == 0 else '':>{ms_w}}")
            line.append(GAP)
            line.append_text(_flags(event, before))
            line.append(GAP)
            for other in lanes:
                if other == lane and i == 0:
                    cell = Text(glyph_of(event)[0], style=style_of(event) or "bold")
                elif other == holder:
                    cell = Text(HOLDS[0], style="yellow")
                elif other in queued:
                    cell = Text(QUEUED[0], style="magenta dim")
                else:
                    cell = Text(" ")
                line.append_text(cell)
                line.append(" " * (lane_w - 1))
            line.append_text(row)
            body[-1].append(line)
        before = event
    return _Header(header, lanes), body


def _words(event: Event, width: int, console: Console) -> Lines:
    """Who did what, wrapped at spaces to ``width``. A close reason too long for two lines is
    shortened at a word, with an ellipsis (the whole of it is in --json)."""
    reason = str(event.detail.get("reason") or "")
    cut = reason.split(" ")
    while True:
        words = Text.assemble((who(event), "bold"), " ", (describe(event), style_of(event)))
        rows = words.wrap(console, width, overflow="fold")
        if len(rows) <= 2 or event.what is not What.CLOSED or not cut:
            return rows
        cut.pop()
        detail = {**event.detail, "reason": " ".join(cut) + "…"}
        event = replace(event, detail=detail)


def row(event: Event, before: Event | None, start: float, mask: Callable[[str], str] = str) -> Text:
    """One event as a line of these swimlanes without the party lanes, for events shown one at
    a time as they happen (``connect -v``): its number and time (ms since ``start``), the two
    step lines, its party's glyph, who did what. ``mask``: what the words go through (secrets)."""
    line = Text(f"{event.seq:>3} {millis(event, start):>9}{GAP}")
    line.append_text(_flags(event, before))
    line.append(GAP)
    line.append(glyph_of(event)[0], style=style_of(event) or "bold")
    line.append(" ")
    line.append(mask(who(event)), style="bold")
    line.append(" ")
    line.append(mask(describe(event)), style=style_of(event))
    return line


def _flags(event: Event, before: Event | None) -> Text:
    """The ``S E`` of a line: sending and established as step lines."""
    return Text.assemble(
        _flag(event.sending, "sending", before, "yellow"),
        " ",
        _flag(event.established, "established", before, "cyan"),
    )


def _flag(value: int | bool, name: str, before: Event | None, colour: str) -> Text:
    """One step of a flag's line: a filled bar while true, bold where it changed."""
    changed = before is None or getattr(before, name) != value
    if value:
        return Text(TRUE_BAR, style=f"bold {colour}" if changed else colour)
    return Text(FALSE_BAR, style="bold" if changed else "dim")


def _legend(
    events: list[Event], lanes: dict[str, Lane], width: int, console: Console
) -> Iterator[Text]:
    """The lanes' keys, the glyphs that appear and the flags, packed into lines at whole entries."""
    entries = [f"{lane.key} {lane.name}" for lane in lanes.values()]
    seen = {glyph_of(event)[0] for event in events}
    order = [*GLYPHS.values(), RISE, FALL, OTHER]
    entries += [f"{glyph} {word}" for glyph, word in order if glyph in seen]
    if lanes:
        entries += [" ".join(HOLDS), " ".join(QUEUED)]
    entries += FLAGS_KEY
    line = ""
    for entry in entries:
        if line and cell_len(line) + len(GAP) + cell_len(entry) > width:
            yield from Text(line, style="dim").wrap(console, width, overflow="fold")
            line = ""
        line = f"{line}{GAP}{entry}" if line else entry
    if line:
        yield from Text(line, style="dim").wrap(console, width, overflow="fold")
