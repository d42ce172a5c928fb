"""The memory bound of an exploration (light: the command line reads it for its help)."""

# Every distinct state is kept (engine.py), a few hundred bytes each once their equal parts are
# shared; at this many the search stops, reported as not exhaustive (``--max-states``).
MAX_STATES = 2_000_000
