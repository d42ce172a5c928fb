"""The names of the deliberately broken variants of the core (mutants.py), and nothing else:
``trace-shutdown --broken`` lists its choices from here, so ``--help`` and shell completion do
not load the patches (tests/test_mutations.py checks the two lists agree)."""

NAMES = (
    "release-without-signal",
    "signal-before-release",
    "waiter-after-yield",
    "send-without-token",
    "signal-twice",
    "lifo-wake-up",
    "cancelled-waiter-swallows-wake-up",
    "dispose-before-waiters-drained",
    "on-close-twice",
    "on-close-under-token",
    "reader-writes-pong",
    "send-releases-before-drain",
    "unbounded-close-wait",
    "connector-releases-before-upgrade",
    "keepalive-without-token",
    "send-overtakes-owed-pong",
    "close-echo-lost",
    "deinit-not-rerun-after-cancel",
    "half-message-on-cancel",
    "half-connection-on-cancel",
)
