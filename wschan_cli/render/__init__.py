"""Views: they read channel events (and received messages) and never drive the channel."""
