"""How a connection's end is summed up (``close.close_info``, a pure function of websockets'
protocol after real frames), which Close frames may be sent (``close.unsendable_part``, the one
rule the core, the CLI and the test server share), and the connection's lifecycle table."""

from __future__ import annotations

import asyncio

import pytest
from websockets.client import ClientProtocol
from websockets.protocol import OPEN
from websockets.uri import parse_uri

from wschan_cli.channel.close import CloseInfo, close_info
from wschan_cli.channel.connection import (
    TRANSITIONS,
    Connection,
    Lifecycle,
    LifecycleViolation,
)
from wschan_cli.channel.sendable import check_sendable, unsendable_part
from wschan_cli.render.closecodes import close_frame_problem
from wschan_cli.server import Behaviour

pytestmark = pytest.mark.timeout(10)


def opened() -> ClientProtocol:
    return ClientProtocol(parse_uri("ws://h/"), state=OPEN)


def server_close(code: int, reason: bytes = b"") -> bytes:
    """A Close frame as a server sends it (unmasked)."""
    payload = code.to_bytes(2, "big") + reason
    return bytes([0x88, len(payload)]) + payload


# ----------------------------------------------------------------------------- close_info


def test_the_peer_closing_first_is_the_peer_s_close() -> None:
    proto = opened()
    proto.receive_data(server_close(1000, b"bye"))
    assert close_info(proto, local_close=None, failed=False) == CloseInfo(1000, "bye", "peer", True)


def test_our_close_answered_is_ours_and_clean() -> None:
    proto = opened()
    proto.send_close(1001, "leaving")
    proto.receive_data(server_close(1001, b"leaving"))
    assert close_info(proto, local_close=None, failed=False) == CloseInfo(
        1001, "leaving", "local", True
    )


def test_a_close_code_other_than_1000_or_1001_is_not_clean() -> None:
    proto = opened()
    proto.receive_data(server_close(1011, b"oops"))
    assert close_info(proto, local_close=None, failed=False) == CloseInfo(
        1011, "oops", "peer", False
    )


def test_a_connection_we_failed_has_our_code() -> None:
    proto = opened()
    proto.fail(1007, "invalid UTF-8")
    assert close_info(proto, local_close=None, failed=True) == CloseInfo(
        1007, "invalid UTF-8", "local", False
    )


def test_a_frame_websockets_refused_fails_it_with_its_code() -> None:
    proto = opened()
    proto.receive_data(b"\x83\x00")  # reserved opcode 3: websockets fails with 1002
    assert close_info(proto, local_close=None, failed=False) == CloseInfo(
        1002, "invalid opcode", "local", False
    )


def test_tcp_ending_without_a_close_frame_is_the_peer_s_1006() -> None:
    proto = opened()
    proto.receive_eof()  # websockets records an EOFError: the peer's doing, not a failure
    assert close_info(proto, local_close=None, failed=False) == CloseInfo(
        1006, "connection dropped without a Close frame", "peer", False
    )


def test_what_we_recorded_when_cutting_the_link_stands_over_the_frames() -> None:
    proto = opened()
    proto.receive_data(server_close(1000))
    ours = CloseInfo(1006, "write timed out", "local", False)
    assert close_info(proto, local_close=ours, failed=False) is ours


# ----------------------------------------------------------------------------- the close rule


@pytest.mark.parametrize(
    ("code", "reason", "part"),
    [
        (1000, "", None),
        (1003, "", None),
        (1007, "", None),
        (1014, "", None),
        (3000, "", None),
        (4999, "r" * 123, None),
        (1004, "", "code"),
        (1005, "", "code"),
        (1006, "", "code"),
        (1015, "", "code"),
        (999, "", "code"),
        (2000, "", "code"),
        (5000, "", "code"),
        (1000, "r" * 124, "reason"),
        (1000, "é" * 62, "reason"),  # 124 bytes of UTF-8 in 62 characters
        (1000, "\udcff", "reason"),  # not UTF-8 at all (a surrogate-escaped byte)
    ],
)
def test_one_rule_for_the_core_the_cli_and_the_test_server(
    code: int, reason: str, part: str | None
) -> None:
    assert unsendable_part(code, reason) == part
    problem = close_frame_problem(code, reason)
    assert (problem[0] if problem else None) == part
    if part is None:
        check_sendable(code, reason)
        Behaviour(close_code=code, close_reason=reason)
    else:
        with pytest.raises(ValueError):
            check_sendable(code, reason)
        with pytest.raises(ValueError):
            Behaviour(close_code=code, close_reason=reason)


# ----------------------------------------------------------------------------- lifecycle


def connection() -> Connection:
    async def make() -> Connection:
        loop = asyncio.get_running_loop()
        proto = ClientProtocol(parse_uri("ws://h/"))
        return Connection(n=1, transport=None, proto=proto, upgraded=loop.create_future())  # type: ignore[arg-type]

    return asyncio.run(make())


def test_a_connection_lives_along_the_table() -> None:
    conn = connection()
    assert conn.lifecycle is Lifecycle.CONNECTING
    for stage in (Lifecycle.OPEN, Lifecycle.SHUTTING_DOWN, Lifecycle.RELEASED):
        conn.transition(stage)
        assert conn.lifecycle is stage
    assert conn.released and conn.closing


def test_a_move_no_rule_allows_is_refused_with_the_rules_that_apply() -> None:
    conn = connection()
    with pytest.raises(LifecycleViolation) as refused:
        conn.transition(Lifecycle.RELEASED)  # never without a shutdown first
    message = str(refused.value)
    assert "from connecting to released, which no rule allows" in message
    assert TRANSITIONS[(Lifecycle.CONNECTING, Lifecycle.OPEN)] in message
    assert conn.lifecycle is Lifecycle.CONNECTING  # unchanged
    conn.transition(Lifecycle.SHUTTING_DOWN)
    conn.transition(Lifecycle.RELEASED)
    with pytest.raises(LifecycleViolation, match="released it may go only nowhere"):
        conn.transition(Lifecycle.RELEASED)  # released once per connection


def test_every_stage_but_released_has_a_way_out_and_every_stage_but_connecting_a_way_in() -> None:
    sources = {a for a, _ in TRANSITIONS}
    targets = {b for a, b in TRANSITIONS if a is not b}
    assert sources == set(Lifecycle) - {Lifecycle.RELEASED}
    assert targets == set(Lifecycle) - {Lifecycle.CONNECTING}
