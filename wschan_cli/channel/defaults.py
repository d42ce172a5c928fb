"""The defaults of a channel's options (``ChannelOptions``), as plain numbers.

Written here once, for the options' dataclass and for the command line, which shows them in its
help: ``wschan send --help`` reads them without building the dataclass (issue 13, start-up).
"""

from __future__ import annotations

OPEN_TIMEOUT = 10.0  # connect + TLS + upgrade, as one deadline
CLOSE_TIMEOUT = 10.0  # wait for the peer's Close / TCP close
WRITE_TIMEOUT = 30.0  # a frame that cannot drain this long kills the link (D8)
MAX_SIZE = 2**20  # largest incoming message; bigger closes with 1009
PING_INTERVAL = 20.0  # keepalive ping every this long
PING_TIMEOUT = 20.0  # no Pong this long after a ping: close with 1011
