"""The sessions: what a client command does once its command line is validated (imported when
the command runs). Below ``commands/``, above ``render/``; nothing here imports a command.

send          a ``wschan send`` run: SendSession (connect, send, wait, close, the exit status)
send_plan     what a send run is asked to do (the Plan built by the command) and its waits
link          one connection after another: the current Channel, ``--init``, ``--reconnect``
backoff       the reconnect delays (exponential with jitter)
retry         which failed connects --reconnect retries (transient) or gives up (permanent)
bridge        connect off a terminal: stdin lines -> messages, messages -> stdout lines
program_bridge  connect --exec: a program's stdout lines -> messages, messages -> its stdin
repl          connect on a terminal: the prompt_toolkit session
view          the channel's state as the toolbar shows it, built from events only
slash         parsing of the slash commands

Input, shared by send and connect:

reader        stdin or a file read in a thread, split into messages, long ones streamed
payload       input bytes -> message (UTF-8 check, hex, base64), whole or chunk by chunk
outgoing      the messages of a send, in order, streamed ones included
script        send --input jsonl: the JSON Lines actions
race          waiting for whichever of several things happens first

The error rule and the two-stage Ctrl-C of every command are in ``wschan_cli/runner.py``; the
replies' way to stdout in ``render/sink.py``.
"""
