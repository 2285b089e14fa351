"""Asynchronous mode: an HTTP server of games and weights, and the clients that talk to it.

- `wire`: the safe binary formats of games, batches and priorities on the wire and at rest;
- `storage`: the server's durable record (SQLite in WAL mode plus HDF5 weight files) and the
  in-memory replay buffer rebuilt from it;
- `app`: the Flask application (API, dashboard, play page, token check);
- `client`: the `requests` client implementing the `Replay` and `Weights` interfaces;
- `workers`: the self-play and training client loops.
"""
