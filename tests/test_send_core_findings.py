"""What building ``wschan send`` found in the channel core, pinned as tests.

A test marked ``xfail(strict=True)`` documents a core bug that is reported, not fixed here (the
core's channel.py belongs to its own work): it fails today, and once the core is fixed it passes,
which makes the strict xfail fail so the mark gets removed.
"""

from __future__ import annotations

import pytest

from wschan_cli.channel import Channel, CloseInfo
from wschan_cli.server import EmbeddedServer

from .helpers import QUIET, run


@pytest.mark.xfail(
    strict=True,
    reason="core: an abrupt deinit reports the close as the peer's "
    '(1006 "connection dropped without a Close frame", by="peer"); wschan send works around '
    "it for --abrupt",
)
def test_an_abrupt_deinit_is_reported_as_a_local_close() -> None:
    async def main() -> list[CloseInfo]:
        closes: list[CloseInfo] = []
        async with EmbeddedServer() as server:
            ch = Channel(server.url, options=QUIET, on_close=closes.append)
            await ch.send("hi")
            await ch.deinit(abrupt=True)
            await server.wait_ended(1)
            assert server.close_codes == [None]  # no Close frame went out: that part is right
        return closes

    (info,) = run(main())
    assert info.code == 1006 and not info.clean
    assert info.by == "local"
