"""The live deinit / handle_terminate race: scenarios on real sockets (their verdicts are in
invariants/)."""
