"""The record of one run of the shutdown race, which the verdicts check: every event, each
send's outcome, the on_close calls. A real-socket scenario (trace/) and an explored schedule
(explore/) both fill one."""

from __future__ import annotations

from dataclasses import dataclass, field

from wschan_cli.channel import CloseInfo, Event


@dataclass
class Run:
    """What one run (a scenario, an explored schedule) produced: every event, each send's
    outcome, the on_close calls."""

    scenario: str
    senders: int
    abrupt: bool
    events: list[Event] = field(default_factory=list)
    outcomes: dict[str, str] = field(default_factory=dict)  # send party -> "sent" / error
    closes: list[CloseInfo] = field(default_factory=list)
    hung: bool = False
