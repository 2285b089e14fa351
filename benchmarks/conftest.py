"""Shared benchmark plumbing: figures recorded by benchmarks, printed as one table at the end.

Ratios (Numba vs reference, envs 64 vs envs 1) are computed from figures of the same run.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))  # the server test helpers

FIGURES: dict[str, float] = {}


@pytest.fixture
def record():
    """record(name, value, benchmark=None): keep a figure for the summary (and the JSON report)."""
    def keep(name: str, value: float, benchmark=None) -> None:
        FIGURES[name] = value
        if benchmark is not None:
            benchmark.extra_info[name] = value
    return keep


def _ratio_lines() -> list[str]:
    lines = []
    for batch in (1, 64, 256):
        fast = FIGURES.get(f"search numba B={batch} simulations/s")
        slow = FIGURES.get(f"search reference B={batch} simulations/s")
        if fast and slow:
            lines.append(f"search speed-up numba/reference at B={batch}: {fast / slow:,.0f}x")
    one, many = FIGURES.get("selfplay envs=1 positions/s"), FIGURES.get(
        "selfplay envs=64 positions/s")
    if one and many:
        lines.append(f"self-play throughput envs=64 / envs=1: {many / one:.1f}x")
    for batch in (1, 100):
        one = FIGURES.get(f"agent one view B={batch} decisions/s")
        eight = FIGURES.get(f"agent 8 views B={batch} decisions/s")
        if one and eight:
            lines.append(f"agent decision time, 8 views / one view at B={batch}: "
                         f"{one / eight:.1f}x")
    return lines


def pytest_terminal_summary(terminalreporter):
    if not FIGURES:
        return
    terminalreporter.section("muzero figures")
    for name, value in FIGURES.items():
        terminalreporter.write_line(f"{name}: {value:,.4g}")
    for line in _ratio_lines():
        terminalreporter.write_line(line)
