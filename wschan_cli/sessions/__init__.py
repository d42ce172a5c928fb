"""``wschan connect`` and the input of ``wschan send``: the pieces of the sessions (imported
when the command runs).

link      one connection after another: the current Channel, ``--init``, ``--reconnect``
backoff   the reconnect delays (exponential with jitter)
bridge    off a terminal: stdin lines -> messages, messages -> stdout lines
view      the channel's state as the toolbar shows it, built from events only
slash     parsing of the slash commands
repl      on a terminal: the prompt_toolkit session
retry     which failed connects --reconnect retries (transient) or gives up (permanent)
interrupt the Ctrl-C rule (first: end cleanly; second: quit at once), also send's

Input, shared with ``wschan send``:

reader    stdin or a file read in a thread, split into messages, long ones streamed
payload   input bytes -> message (UTF-8 check, hex, base64), whole or chunk by chunk
outgoing  the messages of a send, in order, streamed ones included
race      waiting for whichever of several things happens first
"""
