"""The shutdown-race timeline: one row per event, one lane per party, then ``sending`` and
``established`` after the event, changes highlighted (channel-model.md section 3, measured).

Reads events only. Text that came from the server (a close reason) is shown as inert data: it
is never parsed as markup and its control characters are escaped.
"""

from __future__ import annotations

from rich import box
from rich.table import Table
from rich.text import Text

from wschan_cli.channel import Event, What

from .escape import escape_control


def inert(text: str) -> str:
    """Server text (a close reason) on one line, its control characters shown escaped."""
    return escape_control(text, one_line=True)


def lane_of(event: Event) -> str:
    kind = event.party.kind
    if kind == "deinit":
        return "client.deinit()"
    if kind == "terminate":
        return "handle_terminate()"
    if kind == "reader":
        return "reader"
    if kind == "send":
        return str(event.party)
    return "other"


def describe(event: Event) -> str:
    d = event.detail
    match event.what:
        case What.TAKE:
            return "take"
        case What.WAIT:
            return f"wait ({event.waiters} queued)"
        case What.SIGNAL:
            return f"signal -> {d.get('woken')}"
        case What.WAKE:
            return "wake, re-compete"
        case What.RELEASE:
            return "release"
        case What.ESTABLISHED:
            return f"established {d.get('before')}->{event.established}"
        case What.STATE:
            return f"state {event.state}"
        case What.CONNECT:
            return "connect"
        case What.UPGRADED:
            return f"upgraded ({d.get('status')})"
        case What.FRAME_OUT:
            return f"write {d.get('opcode')}"
        case What.FRAME_IN:
            return f"read {d.get('opcode')}"
        case What.SHUTDOWN:
            how = "abort" if d.get("abort") else "graceful" if d.get("graceful") else "close"
            return f"shutdown ({how})"
        case What.READER_END:
            return f"reader ended ({d.get('reason')})"
        case What.CLOSED:
            reason = f' "{inert(str(d.get("reason")))}"' if d.get("reason") else ""
            return f"closed {d.get('code')}{reason} by {d.get('by')}"
        case What.ON_CLOSE:
            return f"on_close({d.get('code')})"
        case What.LEAVE:
            return "established == 0: leave"
        case What.DONE:
            return "sent" if event.party.kind == "send" else "done"
        case What.FAIL:
            return f"failed: {d.get('error_type')}"
        case What.DISPOSE:
            return "dispose"
    return event.what.value


class Timeline:
    """A growing table of events; render it (live or once) with a rich Console."""

    FIXED = ("client.deinit()", "handle_terminate()", "reader")

    def __init__(self, title: str) -> None:
        self.title = title
        self.events: list[Event] = []

    def add(self, event: Event) -> None:
        self.events.append(event)

    def lanes(self) -> list[str]:
        senders = sorted(
            {lane_of(e) for e in self.events if e.party.kind == "send"},
            key=lambda name: int(name.split("#")[1]),
        )
        others = ["other"] if any(lane_of(e) == "other" for e in self.events) else []
        return [*self.FIXED, *senders, *others]

    def __rich__(self) -> Table:
        # A copy: the live view draws from rich's refresh thread while events are appended.
        events = list(self.events)
        lanes = self.lanes()
        table = Table(title=self.title, title_justify="left", show_lines=False, pad_edge=False)
        table.add_column("#", justify="right", style="dim")
        table.add_column("ms", justify="right", style="dim")
        for lane in lanes:
            table.add_column(lane, overflow="fold")
        table.add_column("sending", justify="center")
        table.add_column("established", justify="center")
        start = events[0].time if events else 0.0
        before: Event | None = None
        for event in events:
            cells: list[Text] = [Text("") for _ in lanes]
            lane = lane_of(event)
            style = "bold red" if event.what is What.FAIL else _STYLES.get(event.what, "")
            if event.what is What.DONE:
                style = "green"
            cells[lanes.index(lane)] = Text(describe(event), style=style)
            sending_changed = before is None or before.sending != event.sending
            est_changed = before is None or before.established != event.established
            table.add_row(
                str(event.seq),
                f"{(event.time - start) * 1000:.2f}",
                *cells,
                Text(str(event.sending).lower(), style="bold yellow" if sending_changed else "dim"),
                Text(str(event.established), style="bold cyan" if est_changed else "dim"),
            )
            before = event
        return table

    def compact(self) -> Table:
        """One row per event, no lanes: for pipes, logs and narrow screens."""
        table = Table(title=self.title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
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
            table.add_row(
                str(event.seq),
                f"{(event.time - start) * 1000:.2f}",
                lane_of(event) if lane_of(event) != "other" else str(event.party),
                Text(describe(event)),
                str(event.sending).lower(),
                str(event.established),
            )
        return table


_STYLES = {
    What.TAKE: "yellow",
    What.RELEASE: "yellow",
    What.WAIT: "magenta",
    What.SIGNAL: "magenta",
    What.WAKE: "magenta",
    What.ESTABLISHED: "bold cyan",
    What.SHUTDOWN: "bold",
    What.DISPOSE: "bold",
    What.LEAVE: "italic",
}


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
            f"| {event.seq} | {(event.time - start) * 1000:.2f} | "
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


def ordering(events: list[Event]) -> str:
    """The shape of one run, to count how often each ordering occurs: who took the token in
    turn, who shut down, who found established == 0 and left."""
    steps = []
    for e in events:
        if e.what is What.TAKE and e.party.kind in ("deinit", "terminate", "send"):
            steps.append(f"{lane_of(e)} takes")
        elif e.what is What.SHUTDOWN:
            steps.append(f"{lane_of(e)} shuts down")
        elif e.what is What.LEAVE:
            steps.append(f"{lane_of(e)} leaves")
        elif e.what is What.FAIL and e.party.kind == "send":
            steps.append(f"{lane_of(e)} fails")
    return " -> ".join(steps)
