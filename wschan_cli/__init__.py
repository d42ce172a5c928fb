"""wschan: a WebSocket command-line client built on the sogou/workflow channel design."""

__version__ = "0.1.0"
