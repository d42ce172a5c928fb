"""The embedded WebSocket server: an echo server whose misbehaviour can be chosen (``wschan serve``
and the test suite), and its ``--exec`` mode, a program behind each connection
(:mod:`wschan_cli.server.exec`, imported only by those who run it).

Built on :mod:`websockets.asyncio.server`; imports nothing of click or rich, nor any floor above
the channel, so it stays cheap to import from tests. One concept per module:

* :mod:`.behaviour`: the faults chosen, checked once;
* :mod:`.embedded`: listening, the handshake hooks, the echo handler, the bounded shutdown;
* :mod:`.connection`: one connection, which records pongs and close codes and can swallow Close;
* :mod:`.cork`: the small writes of one turn of the loop leave in one system call;
* :mod:`.faults`: what the faults write on the wire;
* :mod:`.record`: what the server received, and the waits on it;
* :mod:`.exec`: ``--exec``, one program per connection.
"""

from .behaviour import Behaviour
from .embedded import DEFAULT_MAX_SIZE, EmbeddedServer

__all__ = ["DEFAULT_MAX_SIZE", "Behaviour", "EmbeddedServer"]
