"""The words for one channel event, shared by every view of the shutdown race: who acted
(the lane it belongs to) and what happened, in a few words.

Text that came from the server (a close reason) is shown as inert data: it is never parsed as
markup and its control characters are escaped.
"""

from __future__ import annotations

from wschan_cli.channel import Event, PartyKind, What

from .escape import escape_control


def inert(text: str) -> str:
    """Server text (a close reason) on one line, its control characters shown escaped."""
    return escape_control(text, one_line=True)


# The two parties of the race by the names of the C++ design (channel-model.md section 3).
NAMES = {PartyKind.DEINIT: "client.deinit()", PartyKind.TERMINATE: "handle_terminate()"}


def lane_of(event: Event) -> str:
    """The party's column in the tables: the race's two parties, the reader, each send, or
    "other" for the rest."""
    kind = event.party.kind
    if kind in NAMES:
        return NAMES[kind]
    if kind == PartyKind.READER:
        return "reader"
    if kind == PartyKind.SEND:
        return str(event.party)
    return "other"


def millis(event: Event, start: float) -> str:
    """When the event happened, in milliseconds since ``start`` (the views' "ms" column)."""
    return f"{(event.time - start) * 1000:.2f}"


def describe(event: Event) -> str:
    """The event's own words, with server text in them shown inert."""
    return event.describe(inert)


def who(event: Event) -> str:
    """The party as a view names it: its lane, or the party itself for the other parties."""
    lane = lane_of(event)
    return lane if lane != "other" else str(event.party)


def style_of(event: Event) -> str:
    """The rich style of an event's words."""
    if event.what is What.FAIL:
        return "bold red"
    if event.what is What.DONE:
        return "green"
    return STYLES.get(event.what, "")


STYLES = {
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
