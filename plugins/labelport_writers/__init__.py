"""labelport's built-in writers. Each module is a plugin registered exactly like a third-party one, and uses
only labelport's public API."""
