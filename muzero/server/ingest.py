"""Games and positions received over time, for the dashboard's chart, counted in memory.

The dashboard asks every 2 seconds. Binning the `uploads` table in SQLite read every upload's row,
whose 100 KB of games make the table's pages large: 33 ms at 20,000 uploads (ten hours of the
README's asynchronous tic-tac-toe), about 0.5 s at a week's 320,000, under the store's lock that
uploads and batches wait on. In memory, one row of three numbers an upload, the same bins take
1.5 ms and 18 ms (docs/performance.md).
"""

from __future__ import annotations

import math

import numpy as np

MAX_INGEST_BINS = 500


class IngestSeries:
    """(time received, games, positions) of every upload, in order of arrival."""

    def __init__(self, rows: list[tuple[float, int, int]]):
        self._rows = np.zeros((max(len(rows), 1024), 3))
        self._rows[:len(rows)] = np.reshape(rows, (-1, 3))
        self._count = len(rows)

    def add(self, received: float, games: int, positions: int) -> None:
        if self._count == len(self._rows):
            self._rows = np.concatenate([self._rows, np.zeros_like(self._rows)])
        self._rows[self._count] = (received, games, positions)
        self._count += 1

    def bins(self, min_bin_seconds: float = 10.0) -> list[dict]:
        """Games and positions received per time bin, oldest first: bins of `min_bin_seconds`,
        wider (a multiple of 10 s) on a long run so that there are at most `MAX_INGEST_BINS`."""
        rows = self._rows[:self._count]
        if not len(rows):
            return []
        received = rows[:, 0]
        span = float(received.max() - received.min())
        bin_seconds = max(min_bin_seconds, math.ceil(span / MAX_INGEST_BINS / 10.0) * 10.0)
        bins, which = np.unique((received // bin_seconds).astype(np.int64), return_inverse=True)
        games = np.bincount(which, weights=rows[:, 1])
        positions = np.bincount(which, weights=rows[:, 2])
        return [{"time": float(start * bin_seconds), "games": int(round(count)),
                 "positions": int(round(moves))}
                for start, count, moves in zip(bins.tolist(), games, positions)]
