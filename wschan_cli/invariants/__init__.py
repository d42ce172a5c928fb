"""The invariants of channel-model.md section 5 and D2-D11, checked on the channel's events:
``verdicts.py`` over a whole history (a ``record.Run``), ``monitor.py`` after every step of an
explored schedule. Below both the real-socket scenarios (trace/) and the explorer (explore/);
reads channel events only."""
