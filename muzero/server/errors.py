"""What the server's stores raise for a request they refuse, shared by its modules."""

MAX_ID = 2 ** 63 - 1  # SQLite's largest integer: versions, steps and log ids above it are refused


class StoreError(ValueError):
    """A request the store refuses; nothing of it was stored. The message names the problem."""


class NotFound(LookupError):
    """A version or record that does not exist."""
