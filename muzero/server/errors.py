"""What the server's stores raise for a request they refuse, and what its clients raise when a
request fails: shared by the modules of both sides, and light to import (no TensorFlow), so
that the command line can name them before it loads TensorFlow."""

MAX_ID = 2 ** 63 - 1  # SQLite's largest integer: versions, steps and log ids above it are refused


class StoreError(ValueError):
    """A request the store refuses; nothing of it was stored. The message names the problem."""


class NotFound(LookupError):
    """A version or record that does not exist."""


class ServerError(RuntimeError):
    """The server refused a request (4xx); retrying the same request cannot help."""


class ServerUnavailable(ConnectionError):
    """The server did not answer within the client's patience."""
