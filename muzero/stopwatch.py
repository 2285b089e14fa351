"""Cheap wall-time accounting by phase, for the self-play time breakdown."""

from __future__ import annotations

import time
from collections import defaultdict


class Stopwatch:
    """Attributes the time since the previous `lap` to the phase named now.

    One `perf_counter` call per lap, so it can stay on in the hot loop; the phases partition the
    wall time exactly, with no gap between them.
    """

    def __init__(self) -> None:
        self.totals: dict[str, float] = defaultdict(float)
        self._last = time.perf_counter()

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.totals[phase] += now - self._last
        self._last = now

    def reset(self) -> None:
        self.totals.clear()
        self._last = time.perf_counter()

    def shares(self) -> dict[str, float]:
        """Each phase's fraction of the accounted time."""
        total = sum(self.totals.values()) or 1.0
        return {phase: seconds / total for phase, seconds in self.totals.items()}
