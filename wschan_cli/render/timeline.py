"""The shutdown-race timeline: the events of one run, shown as swimlanes on a terminal
(swimlanes.py), as a plain table off one, or as Markdown tables for documentation, with the
verdicts of the invariants (channel-model.md section 3, measured).

Reads events only. Text that came from the server (a close reason) is shown as inert data: it
is never parsed as markup and its control characters are escaped.
"""

from __future__ import annotations

from rich import box
from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table
from rich.text import Text

from wschan_cli.channel import Event, PartyKind, What

from .swimlanes import Mark, Swimlanes
from .transitions import NAMES, describe, inert, lane_of, millis, who

__all__ = ["Timeline", "describe", "markdown", "ordering", "verdict_table"]


class Timeline:
    """A growing table of events; render it (live or once) with a rich Console."""

    FIXED = (*NAMES.values(), "reader")

    def __init__(self, title: str, mark: Mark | None = None) -> None:
        self.title = title
        self.events: list[Event] = []
        self.following = False  # a live view is drawing the run as it happens
        self.mark = mark  # the step where an invariant broke (an explored counterexample)

    def add(self, event: Event) -> None:
        self.events.append(event)

    def lanes(self) -> list[str]:
        senders = sorted(
            {lane_of(e) for e in self.events if e.party.kind == PartyKind.SEND},
            key=lambda name: int(name.split("#")[1]),
        )
        others = ["other"] if any(lane_of(e) == "other" for e in self.events) else []
        return [*self.FIXED, *senders, *others]

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        # While a live view follows the run, the picture keeps to the screen, latest events
        # last (a taller one would be cropped at the top events); once over, every event.
        height = options.max_height - 1 if self.following else None
        # A copy: the live view draws from rich's refresh thread while events are appended.
        yield Swimlanes(list(self.events), self.title, self.mark, height=height)

    def compact(self) -> Table:
        """One row per event, no lanes: for pipes, logs and narrow screens."""
        table = Table(title=self.title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
        mark = self.mark
        marked = mark is not None and any(e.seq == mark.seq for e in self.events)
        if marked:
            # The broken step, so that a pipe or a log shows it too.
            table.add_column("", style="bold red", no_wrap=True)
        for name, justify in (
            ("#", "right"),
            ("ms", "right"),
            ("party", "left"),
            ("event", "left"),
            ("sending", "center"),
            ("established", "center"),
        ):
            table.add_column(name, justify=justify)  # type: ignore[arg-type]
        start = self.events[0].time if self.events else 0.0
        for event in self.events:
            flag = f"✗ §{mark.invariant}" if mark is not None and event.seq == mark.seq else ""
            table.add_row(
                *([flag] if marked else []),
                str(event.seq),
                millis(event, start),
                who(event),
                Text(describe(event)),
                str(event.sending).lower(),
                str(event.established),
            )
        return table


def verdict_table(title: str, verdicts: list) -> Table:  # list[Verdict]
    table = Table(title=title, title_justify="left")
    table.add_column("§5")
    table.add_column("invariant")
    table.add_column("result")
    table.add_column("evidence (event numbers)", overflow="fold")
    for v in verdicts:
        table.add_row(
            v.invariant,
            v.claim,
            Text("pass", style="bold green") if v.ok else Text("FAIL", style="bold red"),
            Text(inert(v.evidence)),
        )
    return table


def _md_cell(text: str) -> str:
    return inert(text).replace("|", "\\|")


def markdown(timeline: Timeline, verdicts: list | None = None) -> str:  # list[Verdict]
    """The timeline (a column per lane) and its verdicts as Markdown tables, for documentation."""
    lanes = timeline.lanes()
    lines = [f"**{_md_cell(timeline.title)}**", ""]
    lines.append("| # | ms | " + " | ".join(lanes) + " | sending | established |")
    lines.append("|---:|---:|" + "---|" * len(lanes) + ":---:|:---:|")
    start = timeline.events[0].time if timeline.events else 0.0
    before: Event | None = None
    for event in timeline.events:
        cells = [""] * len(lanes)
        cells[lanes.index(lane_of(event))] = _md_cell(describe(event))
        sending = str(event.sending).lower()
        established = str(event.established)
        if before is None or before.sending != event.sending:
            sending = f"**{sending}**"
        if before is None or before.established != event.established:
            established = f"**{established}**"
        lines.append(
            f"| {event.seq} | {millis(event, start)} | "
            + " | ".join(cells)
            + f" | {sending} | {established} |"
        )
        before = event
    if verdicts:
        lines += ["", "| §5 | invariant | result | evidence |", "|---|---|---|---|"]
        for v in verdicts:
            result = "pass" if v.ok else "**FAIL**"
            lines.append(
                f"| {v.invariant} | {_md_cell(v.claim)} | {result} | {_md_cell(v.evidence)} |"
            )
    return "\n".join(lines) + "\n"


# The parties whose takes make the shape of a run (the others' are not part of the race).
TAKERS = (PartyKind.DEINIT, PartyKind.TERMINATE, PartyKind.SEND)


def ordering(events: list[Event]) -> str:
    """The shape of one run, to count how often each ordering occurs: who took the token in
    turn, who shut down, who found established == 0 and left."""
    steps = []
    for e in events:
        if e.what is What.TAKE and e.party.kind in TAKERS:
            steps.append(f"{lane_of(e)} takes")
        elif e.what is What.SHUTDOWN:
            steps.append(f"{lane_of(e)} shuts down")
        elif e.what is What.LEAVE:
            steps.append(f"{lane_of(e)} leaves")
        elif e.what is What.FAIL and e.party.kind == PartyKind.SEND:
            steps.append(f"{lane_of(e)} fails")
    return " -> ".join(steps)
