"""Exhaustive exploration of the channel's races: a deterministic scheduler (loop.py) runs the real
channel over a simulated transport and peer (sim.py, scenario.py, parties.py) and enumerates every
schedule (engine.py), checking channel-model.md section 5 and D2-D11 after every step
(invariants/monitor.py) and on the peer's side. The state it prunes on is the core's ``snapshot()``.
workflow.py is a small *model* of the C++ ordering of sogou/workflow, for comparison; mutants.py
holds deliberately broken variants of the core (patches of the real modules) that the checks
must catch."""
