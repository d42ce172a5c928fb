"""The live deinit / handle_terminate race: scenarios on real sockets and their verdicts."""
