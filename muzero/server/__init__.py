"""Asynchronous mode: an HTTP server of games and weights, and the clients that talk to it.

- `wire`: the safe binary formats of games, batches and priorities on the wire and at rest;
- `storage`: the server's durable record of games (SQLite in WAL mode), the in-memory replay
  buffer rebuilt from it, the training log and the clients seen;
- `versions`: the weights versions (HDF5 files and their rows), checked on upload and at start;
- `folder`: the data folder's lock and the cleanup of a killed server's leftovers;
- `errors`: what the stores raise for a refused request, and the clients for a failed one;
- `guards`: bounded JSON, Host and Origin checks, sign-in sessions and their rate limit;
- `app`: the Flask application (API, dashboard, play page, token check);
- `client`: the `requests` client implementing the `Replay` and `Weights` interfaces;
- `workers`: the self-play and training client loops.
"""
