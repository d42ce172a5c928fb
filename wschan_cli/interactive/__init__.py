"""``wschan connect``: the pieces of the session (imported when the command runs).

link      one connection after another: the current Channel, ``--init``, ``--reconnect``
backoff   the reconnect delays (exponential with jitter)
bridge    off a terminal: stdin lines -> messages, messages -> stdout lines
view      the channel's state as the toolbar shows it, built from events only
slash     parsing of the slash commands
repl      on a terminal: the prompt_toolkit session
"""
