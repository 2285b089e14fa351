"""The run's training log: losses and evaluations the trainer reports, kept in SQLite for the
dashboard's curves. Entries are JSON without NaN or infinity, bounded in size; pages of the log
are bounded in length."""

from __future__ import annotations

import json
import sqlite3
import threading
import time

from muzero.server.errors import MAX_ID, StoreError

LOG_KINDS = ("losses", "evaluation")
MAX_LOG_ENTRY_BYTES = 64 * 1024
MAX_LOG_PAGE = 10_000


class TrainingLog:
    """The `log` table of the store's database."""

    def __init__(self, db: sqlite3.Connection, lock: threading.Lock):
        self._db = db
        self._lock = lock

    def append(self, kind: str, step: int, data: dict) -> None:
        """Record losses or an evaluation, or raise `StoreError` naming what is wrong."""
        if not isinstance(kind, str) or kind not in LOG_KINDS:
            raise StoreError(f"log kind must be one of {', '.join(LOG_KINDS)}, got "
                             f"{str(kind)[:40]!r}")
        if not isinstance(data, dict):
            raise StoreError("log data must be a JSON object")
        if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step <= MAX_ID:
            raise StoreError(f"log step must be an integer in [0, 2^63), got "
                             f"{str(step)[:40]}")
        try:
            text = json.dumps(data, allow_nan=False)
        except ValueError:
            raise StoreError("log data holds non-finite numbers (NaN or infinity)") from None
        if len(text) > MAX_LOG_ENTRY_BYTES:
            raise StoreError(f"log data takes {len(text)} bytes as JSON, at most "
                             f"{MAX_LOG_ENTRY_BYTES}")
        with self._lock:
            self._db.execute("INSERT INTO log (time, step, kind, data) VALUES (?, ?, ?, ?)",
                             (time.time(), step, kind, text))

    def evaluations(self) -> list[tuple[int, dict]]:
        """Every evaluation logged, oldest first, as (step, evaluation)."""
        with self._lock:
            rows = self._db.execute("SELECT step, data FROM log WHERE kind = 'evaluation' "
                                    "ORDER BY id").fetchall()
        return [(row[0], json.loads(row[1])) for row in rows]

    def page(self, since_id: int = 0, limit: int = 1000) -> tuple[list[dict], bool]:
        """Up to `limit` entries after `since_id`, oldest first, and whether more follow."""
        limit = min(max(limit, 1), MAX_LOG_PAGE)
        with self._lock:
            rows = self._db.execute("SELECT id, time, step, kind, data FROM log WHERE id > ? "
                                    "ORDER BY id LIMIT ?", (min(since_id, MAX_ID), limit + 1)
                                    ).fetchall()
        return ([{"id": row[0], "time": row[1], "step": row[2], "kind": row[3],
                  "data": json.loads(row[4])} for row in rows[:limit]], len(rows) > limit)
