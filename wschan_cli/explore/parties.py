"""The parties the explorer can add to the race, by name (``trace-shutdown --party NAME``).

Each maps to the fields of ``scenario.Setup`` it turns on, and its help. This module imports
nothing heavy: the command line builds its choices from it.
"""

from __future__ import annotations

from typing import Any

# The explorable parties beyond sends, deinit and the peer's end: name -> (Setup fields, help).
PARTIES: dict[str, tuple[dict[str, Any], str]] = {
    "connector": (
        {"connector": True},
        "no connection at the start: the first send connects and upgrades, the others queue "
        "behind it, deinit may come while connecting",
    ),
    "keepalive": (
        {"keepalive": True},
        "keepalive pings; the interval and the ping timeout fire "
        "as timers that compete with every step",
    ),
    "auto-reply": ({"peer_ping": True}, "the peer pings: the auto-reply party owes a Pong"),
    "autobahn": (
        {"autobahn": True},
        "the peer sends a fragment, a Ping, the last fragment in one read; process() answers "
        "the message with a send (the owed Pong goes first, D10)",
    ),
    "peer-data": (
        {"peer_data": True},
        "the peer sends a message in two fragments with a Ping between, one step each",
    ),
    "reconnect": (
        {"peer_close": True, "deinit_last": True},
        "the peer closes cleanly; pending sends reconnect; deinit starts once they resolved",
    ),
    "write-timeout": (
        {"stall": True},
        "the peer stops reading at some step: drains block until the write timeout (D8)",
    ),
    "cancel": (
        {"cancel": True},
        "the first send (with connector: the connect) is cancelled at some step (D11)",
    ),
    "cancel-deinit": (
        {"cancel_deinit": True},
        "deinit is cancelled at some step; a second deinit must still finish and dispose (D11)",
    ),
    "fragments": ({"fragments": 3}, "every send goes out in three fragments"),
    "on-close-deinit": (
        {"on_close_deinit": True},
        "the application calls deinit() from on_close (allowed, D7; in the C++ model: H6)",
    ),
    "slow-close": (
        {"slow_close": True},
        "after the channel's Close the peer keeps pinging and never ends TCP (the close wait "
        "is bounded, D5)",
    ),
}

# The parties the workflow model (explore/workflow.py) has: the connector (H1, H2), a send that
# times out (H7) and deinit() from the close callback (H6).
WORKFLOW_PARTIES = ("connector", "write-timeout", "on-close-deinit")
