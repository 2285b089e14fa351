"""What the replay buffer stores for a game, computed once when the game arrives: the checks that
refuse a bad record (from self-play or from the network) and the n-step value targets.

Why here and not in the buffer: the server checks an upload before it writes the upload to disk,
with the same rules, and the target formula is tested on its own against a plain reference.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from muzero.config import Config
from muzero.records import GameRecord

RECORD_FIELDS = ("observations", "actions", "rewards", "to_play", "root_values", "policies",
                 "legal")


class CheckedGames(NamedTuple):
    """Games fit for a buffer: lengths [G] and their rows concatenated, with value targets
    ("values"), value errors ("value_errors", for priorities) and "truncated" per row."""

    lengths: np.ndarray
    arrays: dict[str, np.ndarray]


def value_targets(rewards: np.ndarray, root_values: np.ndarray, td_steps: int,
                  discount: float, lengths: np.ndarray | None = None,
                  truncated: np.ndarray | None = None) -> np.ndarray:
    """n-step value targets [N, P] from rewards [N, P] and root values [N, P] of one game, or of
    several games whose rows are concatenated (`lengths` [G], summing to N); `truncated` [G]
    marks games cut by a time limit, whose targets bootstrap from their last search value."""
    total = len(rewards)
    lengths = np.array([total]) if lengths is None else np.asarray(lengths)
    remaining = np.repeat(lengths, lengths) - positions_in_games(lengths)  # T - t
    targets = np.zeros_like(rewards, dtype=np.float64)
    for j in range(min(td_steps, int(lengths.max(initial=0)))):  # vectorised over positions
        inside = remaining[:total - j] > j  # t + j < T
        targets[:total - j][inside] += discount ** j * rewards[j:][inside]
    if td_steps < total:
        bootstrap = remaining[:total - td_steps] > td_steps
        targets[:total - td_steps][bootstrap] += (discount ** td_steps
                                                  * root_values[td_steps:][bootstrap])
    if truncated is not None and np.any(truncated):
        # rows whose n steps reach the cut: the last reward gives way to the last search value
        # (which counts that reward and everything after it), discounted like that reward
        cut = np.repeat(np.asarray(truncated, bool), lengths) & (remaining <= td_steps)
        last = np.repeat(np.cumsum(lengths) - 1, lengths)[cut]
        scale = (discount ** (remaining[cut] - 1))[:, None]
        targets[cut] += scale * (root_values[last] - rewards[last])
    return targets.astype(np.float32)


def positions_in_games(lengths: np.ndarray) -> np.ndarray:
    """t of every row of concatenated games [N]."""
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    return np.arange(int(np.sum(lengths))) - np.repeat(starts, lengths)


def check_games(games: Sequence[GameRecord], observation_shape: tuple[int, ...],
                num_actions: int, num_players: int, capacity: int,
                config: Config) -> CheckedGames:
    """Raise `ValueError` naming what makes a game unfit for a buffer of this shape (shapes,
    ranges, non-finite numbers); return the games with their targets."""
    lengths = np.array([len(game) for game in games], np.int64)
    for number, game in enumerate(games):
        length = len(game)
        expected = {"observations": (length,) + tuple(observation_shape),
                    "rewards": (length, num_players),
                    "root_values": (length, num_players),
                    "policies": (length, num_actions),
                    "legal": (length, num_actions)}
        for name, shape in expected.items():
            if getattr(game, name).shape != shape:
                raise ValueError(f"game record {number}: {name} has shape "
                                 f"{getattr(game, name).shape}, expected {shape}")
        if not 1 <= length <= capacity:
            raise ValueError(f"game record {number}: length {length} must be in [1, "
                             f"replay_capacity={capacity}]")
    arrays = {name: np.concatenate([getattr(game, name) for game in games])
              for name in RECORD_FIELDS}
    if arrays["actions"].min() < 0 or arrays["actions"].max() >= num_actions:
        raise ValueError(f"game record: actions out of range [0, {num_actions})")
    legal = arrays["legal"].astype(bool)
    played_legally = legal[np.arange(len(legal)), arrays["actions"]]
    if not played_legally.all():
        row = int(np.argmin(played_legally))
        raise ValueError(f"game record: position {row} of the games: action "
                         f"{arrays['actions'][row]} is not among its legal moves "
                         f"{np.flatnonzero(legal[row]).tolist()}")
    arrays["legal"] = legal
    if arrays["to_play"].min() < 0 or arrays["to_play"].max() >= num_players:
        raise ValueError(f"game record: to_play out of range [0, {num_players})")
    for name in ("observations", "rewards", "root_values", "policies"):
        if not np.isfinite(arrays[name]).all():
            raise ValueError(f"game record: {name} holds non-finite numbers")
    policies = arrays["policies"]
    if (policies < 0).any() or not np.allclose(policies.sum(axis=1), 1.0, atol=1e-3):
        raise ValueError("game record: every policy row must be non-negative and sum to 1")
    # finite numbers can still sum to infinity in float32 (rewards of 3e38): targets and
    # priorities are computed here, once, and must be finite too
    truncated = np.array([game.truncated for game in games], bool)
    arrays["truncated"] = np.repeat(truncated, lengths)
    with np.errstate(over="ignore", invalid="ignore"):
        values = value_targets(arrays["rewards"], arrays["root_values"], config.td_steps,
                               config.discount, lengths, truncated)
        errors = np.abs(arrays["root_values"] - values).max(axis=1)
    if not (np.isfinite(values).all() and np.isfinite(errors).all()):
        raise ValueError("game record: rewards and root values overflow float32 in the "
                         "value targets")
    arrays["values"], arrays["value_errors"] = values, errors
    return CheckedGames(lengths, arrays)
