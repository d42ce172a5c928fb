"""Exhaustive exploration of the shutdown race: a deterministic scheduler (loop.py) runs the real
channel over a simulated transport and peer (sim.py, scenario.py) and enumerates every schedule
(engine.py), checking channel-model.md section 5 after every step (monitor.py). workflow.py is a
small *model* of the C++ ordering of sogou/workflow, for comparison; broken.py holds deliberately
broken variants of the core that the checks must catch."""
