"""The replay buffer: recent games as flat ring arrays, n-step targets, prioritized sampling.

Positions live in ring arrays of `replay_capacity` rows; a game occupies consecutive rows (modulo
the capacity), so position t + k of the game at row s is row (s + k) % C. Adding a game that
does not fit evicts the oldest whole games. Everything a target needs is fixed when a game
arrives, so the n-step value target of every position is computed once at insertion (targets.py,
which also checks each record), and again for a game only when Reanalyse gives its positions new
search values (`refresh_targets`); assembling a batch is a handful of gathers over [B, K + 1]
row indices: no Python loop per position. Each sample is seen through a random symmetry of the
game where it declares some (symmetry.py).

Targets, for every player p, at unroll step k of a sample at position t of a game of length T
(MuZero appendix G and its pseudocode):
- value: sum_{j<n} discount^j r_p[t+k+j] + discount^n root_value_p[t+k+n], terms past the end
  dropped; 0 once t + k >= T (absorbing);
- reward (k >= 1): r_p[t+k-1], 0 past the end;
- a game cut by a time limit (`GameRecord.truncated`) is not absorbing: its last position's
  search value stands for everything after it, so n shrinks to T - 1 - (t+k) and the target
  bootstraps from root_value[T-1]; past its end nothing is known, and value and reward are
  masked out there (`value_mask`, `reward_mask`) instead of trained towards 0;
- policy: the root visit shares at t + k, uniform and masked out past the end;
- to-play (k >= 1, the dynamics head): the player to move at t + k, masked at and past the end.
Actions past the end are drawn uniformly, as in the paper.

Prioritized sampling (Schaul et al. 2016, as MuZero uses it): position i is drawn with probability
P(i) = p_i^alpha / sum_j p_j^alpha, where p_i = max over players |root value - value target|
(from the search at insertion, from the network after each train step); its loss is weighted by
w_i = (N P(i))^-beta over the N stored positions, divided by the batch mean of those weights.
Normalising by the batch mean (self-normalised importance sampling) rather than by the largest
weight keeps the loss at the scale of uniform sampling: with priorities spanning three orders of
magnitude, max-normalised weights shrink every loss a thousandfold next to the L2 term.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import numpy as np

from muzero.config import Config
from muzero.records import GameRecord, legal_from_search
from muzero.symmetry import Augmentation, Symmetry
from muzero.targets import (
    RECORD_FIELDS,
    CheckedGames,
    check_games,
    positions_in_games,
    value_targets,
)

MIN_PRIORITY = 1e-3  # a position the network already predicts perfectly is still drawn sometimes


class TrainingBatch(NamedTuple):
    """B samples of K unroll steps: what one train step consumes."""

    observations: np.ndarray  # [B, *observation_shape] float32
    actions: np.ndarray  # [B, K] int32
    target_values: np.ndarray  # [B, K + 1, P] float32
    target_rewards: np.ndarray  # [B, K + 1, P] float32 (step 0 has no reward; zero)
    value_mask: np.ndarray  # [B, K + 1] float32: 0 past the end of a game cut by a time limit
    reward_mask: np.ndarray  # [B, K + 1] float32: likewise for rewards (0 at step 0)
    target_policies: np.ndarray  # [B, K + 1, A] float32
    policy_mask: np.ndarray  # [B, K + 1] float32: 1 where the position exists
    target_to_play: np.ndarray  # [B, K + 1] int32
    to_play_mask: np.ndarray  # [B, K + 1] float32: 1 for k >= 1 where the position exists
    weights: np.ndarray  # [B] float32: importance weights (1 for uniform sampling)
    indices: np.ndarray  # [B] int64: position ids, for update_priorities


class StoredPositions(NamedTuple):
    """Stored positions as a search needs them: what a reanalysis searches again."""

    position_ids: np.ndarray  # [N] int64
    observations: np.ndarray  # [N, *observation_shape] float32
    legal: np.ndarray  # [N, A] bool
    to_play: np.ndarray  # [N] int32
    move_number: np.ndarray  # [N] int32: t, the moves played before the position


class ReplayBuffer:
    """Whole games in ring arrays; `sample` builds training batches, `add_games` stores games."""

    def __init__(self, config: Config, observation_shape: tuple[int, ...], num_actions: int,
                 num_players: int, rng: np.random.Generator,
                 symmetries: Sequence[Symmetry] = ()):
        capacity = config.replay_capacity
        self.config = config
        self.capacity = capacity
        self.observation_shape = tuple(observation_shape)
        self.num_actions = num_actions
        self.num_players = num_players
        self.rng = rng
        self.observations = np.zeros((capacity,) + self.observation_shape, np.float32)
        self.actions = np.zeros(capacity, np.int32)
        self.rewards = np.zeros((capacity, num_players), np.float32)
        self.to_play = np.zeros(capacity, np.int32)
        self.root_values = np.zeros((capacity, num_players), np.float32)
        self.policies = np.zeros((capacity, num_actions), np.float32)
        self.legal = np.zeros((capacity, num_actions), bool)
        self.values = np.zeros((capacity, num_players), np.float32)  # n-step value targets
        self.position = np.zeros(capacity, np.int32)  # t: index of the row in its game
        self.length = np.zeros(capacity, np.int32)  # T of the row's game
        self.truncated = np.zeros(capacity, bool)  # the row's game was cut by a time limit
        self.position_id = np.full(capacity, -1, np.int64)  # running id of the row's position
        self.priorities = np.zeros(capacity, np.float64)  # p^alpha; 0 for empty or evicted rows
        self.games: deque[tuple[int, int]] = deque()  # (first position id, length), oldest first
        self.total_positions = 0  # positions ever added: the next position id
        self.total_games = 0
        self.reanalyse_from = 0  # position id of the game whose targets are the oldest
        self.augmentation = Augmentation(symmetries if config.augment_symmetries else (),
                                         self.observation_shape, num_actions)

    # ----- storing -----

    @property
    def num_positions(self) -> int:
        return sum(length for _, length in self.games)

    @property
    def num_games(self) -> int:
        return len(self.games)

    def add_games(self, games: Sequence[GameRecord]) -> None:
        """Store whole games, oldest first; nothing is stored if any game fails `check`."""
        if games:
            self.add_checked(*self.check(games))

    def add_checked(self, lengths: np.ndarray, arrays: dict[str, np.ndarray]) -> None:
        """Store games as `check` returned them (a caller that has checked them already)."""
        bounds = np.concatenate([[0], np.cumsum(lengths)])
        first = 0
        while first < len(lengths):  # chunks of games that fit the ring together
            last = first + 1
            while last < len(lengths) and bounds[last + 1] - bounds[first] <= self.capacity:
                last += 1
            rows = slice(bounds[first], bounds[last])
            self._insert({name: array[rows] for name, array in arrays.items()},
                         lengths[first:last])
            first = last

    def start_counting_at(self, total_positions: int, total_games: int) -> None:
        """Number the next game's positions from `total_positions`: an empty buffer that is
        rebuilt from a durable record of games gets the position ids the games had before."""
        if self.games:
            raise ValueError("start_counting_at needs an empty replay buffer")
        self.total_positions = int(total_positions)
        self.total_games = int(total_games)

    def skip(self, positions: int, games: int) -> None:
        """Count games that are not stored (a stored upload refused when the buffer is
        rebuilt), so that the games after them keep their position ids."""
        self.total_positions += int(positions)
        self.total_games += int(games)

    def check(self, games: Sequence[GameRecord]) -> CheckedGames:
        """Raise `ValueError` naming what makes a game unfit for this buffer; return the games
        with their targets (`targets.check_games`)."""
        return check_games(games, self.observation_shape, self.num_actions, self.num_players,
                           self.capacity, self.config)

    def _insert(self, arrays: dict[str, np.ndarray], lengths: np.ndarray) -> None:
        """Write checked games that fit the ring together (sum of lengths <= capacity)."""
        total = int(lengths.sum())
        start = self.total_positions
        while self.games and self.games[0][0] < start + total - self.capacity:
            first, old_length = self.games.popleft()
            self.priorities[np.arange(first, first + old_length) % self.capacity] = 0.0
        rows = np.arange(start, start + total) % self.capacity
        for name in RECORD_FIELDS:
            getattr(self, name)[rows] = arrays[name]
        self.values[rows] = arrays["values"]  # targets and priorities: computed by `check`
        self.truncated[rows] = arrays["truncated"]
        self.position[rows] = positions_in_games(lengths)
        self.length[rows] = np.repeat(lengths, lengths)
        self.position_id[rows] = np.arange(start, start + total)
        self.priorities[rows] = self._priority(arrays["value_errors"])  # from `check`
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        self.games.extend((start + int(offset), int(length))
                          for offset, length in zip(offsets, lengths))
        self.total_positions += total
        self.total_games += len(lengths)

    def _priority(self, errors: np.ndarray) -> np.ndarray:
        """Stored priorities p^alpha from absolute value errors."""
        return np.maximum(errors.astype(np.float64), MIN_PRIORITY) ** self.config.priority_alpha

    # ----- sampling -----

    def _draw(self, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows [B] and their importance weights [B]."""
        if not self.games:
            raise ValueError("the replay buffer is empty: add games before sampling")
        if not self.config.prioritized_replay:
            first = self.games[0][0]
            ids = self.rng.integers(first, self.total_positions, batch_size)
            return ids % self.capacity, np.ones(batch_size, np.float32)
        cumulative = np.cumsum(self.priorities)
        total = cumulative[-1]
        rows = np.searchsorted(cumulative, self.rng.random(batch_size) * total, side="right")
        rows = np.minimum(rows, self.capacity - 1)
        stored = np.count_nonzero(self.priorities)
        weights = (stored * self.priorities[rows] / total) ** -self.config.priority_beta
        return rows, (weights / weights.mean()).astype(np.float32)

    def probabilities(self) -> np.ndarray:
        """P(row) for every row [C]: what `sample` draws from (for tests and diagnostics)."""
        if not self.config.prioritized_replay:
            stored = self.priorities > 0.0
            return stored / stored.sum()
        return self.priorities / self.priorities.sum()

    def sample(self, batch_size: int) -> TrainingBatch:
        """A batch of `batch_size` positions with their K-step targets."""
        rows, weights = self._draw(batch_size)
        K = self.config.num_unroll_steps
        steps = np.arange(K + 1)
        unrolled = rows[:, None] + steps  # [B, K + 1] before the modulo
        offset = self.position[rows][:, None] + steps  # t + k
        exists = offset < self.length[rows][:, None]  # [B, K + 1]
        at = unrolled % self.capacity

        symmetry = self.augmentation.draw(self.rng, batch_size)
        observations = self.augmentation.observations(self.observations[rows], symmetry)

        random_actions = self.rng.integers(self.num_actions, size=(batch_size, K))
        actions = np.where(exists[:, :K], self.actions[at[:, :K]], random_actions)
        actions = self.augmentation.actions(actions, symmetry)

        uniform = np.float32(1.0 / self.num_actions)
        policies = np.where(exists[..., None], self.policies[at], uniform)
        policies = self.augmentation.policies(policies, symmetry)

        values = np.where(exists[..., None], self.values[at], 0.0)
        reward_exists = np.concatenate([np.zeros((batch_size, 1), bool), exists[:, :K]], 1)
        absorbing = ~self.truncated[rows][:, None]  # past the end: 0, or unknown if cut
        previous = (unrolled - 1) % self.capacity
        rewards = np.where(reward_exists[..., None], self.rewards[previous], 0.0)
        to_play_mask = exists.copy()
        to_play_mask[:, 0] = False
        to_play = np.where(exists, self.to_play[at], 0)
        return TrainingBatch(
            observations=observations,
            actions=actions.astype(np.int32),
            target_values=values.astype(np.float32),
            target_rewards=rewards.astype(np.float32),
            value_mask=(exists | absorbing).astype(np.float32),
            reward_mask=(reward_exists | (absorbing & (steps > 0))).astype(np.float32),
            target_policies=policies.astype(np.float32),
            policy_mask=exists.astype(np.float32),
            target_to_play=to_play.astype(np.int32),
            to_play_mask=to_play_mask.astype(np.float32),
            weights=weights,
            indices=self.position_id[rows])

    def update_priorities(self, indices: np.ndarray, errors: np.ndarray) -> None:
        """New priorities from absolute value errors [B] of positions `indices` [B].

        Positions evicted since they were sampled are skipped.
        """
        indices = np.asarray(indices, np.int64)
        errors = np.asarray(errors, np.float64)
        if indices.shape != errors.shape or indices.ndim != 1:
            raise ValueError(f"update_priorities: indices {indices.shape} and errors "
                             f"{errors.shape} must be equal 1-d shapes")
        if not np.isfinite(errors).all():
            raise ValueError("update_priorities: errors hold non-finite numbers")
        rows = indices % self.capacity
        current = (self.position_id[rows] == indices) & (self.priorities[rows] > 0.0)
        self.priorities[rows[current]] = self._priority(errors[current])

    # ----- reanalysis (MuZero Reanalyse: fresh search targets for stored positions) -----

    def positions_to_reanalyse(self, count: int) -> StoredPositions:
        """Whole stored games of about `count` positions in all (at least one game, none
        twice), those whose search targets are the oldest first: the games from
        `reanalyse_from` on, then the oldest stored game again. Moves the cursor past them."""
        if not self.games:
            raise ValueError("the replay buffer is empty: add games before reanalysing")
        firsts = [first for first, _ in self.games]
        start = self.reanalyse_from if firsts[0] <= self.reanalyse_from < self.total_positions \
            else firsts[0]
        index = bisect.bisect_left(firsts, start)
        chosen: list[np.ndarray] = []
        total = 0
        for k in range(len(self.games)):
            first, length = self.games[(index + k) % len(self.games)]
            chosen.append(np.arange(first, first + length))
            total += length
            if total >= count:
                break
        self.reanalyse_from = first + length
        ids = np.concatenate(chosen)
        rows = ids % self.capacity
        return StoredPositions(ids, self.observations[rows], self.legal[rows],
                               self.to_play[rows], self.position[rows])

    def refresh_targets(self, position_ids: np.ndarray, policies: np.ndarray,
                        root_values: np.ndarray) -> int:
        """Store a new search's policy [N, A] and root values [N, P] for positions
        `position_ids` [N] and recompute the value targets of their games; positions evicted
        meanwhile are skipped. Returns the positions refreshed. Raises `ValueError` (nothing
        stored) for targets a search cannot give: wrong shapes, non-finite numbers, a policy
        that is not a distribution over the position's legal moves."""
        ids = np.asarray(position_ids, np.int64)
        policies = np.asarray(policies, np.float32)
        root_values = np.asarray(root_values, np.float32)
        if ids.ndim != 1 or policies.shape != (len(ids), self.num_actions) or \
                root_values.shape != (len(ids), self.num_players):
            raise ValueError(f"refresh_targets: expected position ids [N], policies [N, "
                             f"{self.num_actions}] and root values [N, {self.num_players}], got "
                             f"{ids.shape}, {policies.shape} and {root_values.shape}")
        if not (np.isfinite(policies).all() and np.isfinite(root_values).all()):
            raise ValueError("refresh_targets: policies or root values hold non-finite numbers")
        rows = ids % self.capacity
        current = (self.position_id[rows] == ids) & (self.priorities[rows] > 0.0)
        ids, rows = ids[current], rows[current]
        policies, root_values = policies[current], root_values[current]
        if not len(ids):
            return 0
        if (policies < 0).any() or not np.allclose(policies.sum(axis=1), 1.0, atol=1e-3) or \
                (policies[~self.legal[rows]] > 0).any():
            raise ValueError("refresh_targets: every policy must be a distribution over the "
                             "position's legal moves")
        starts = np.unique(ids - self.position[rows])
        lengths = self.length[starts % self.capacity].astype(np.int64)
        game_rows = np.concatenate([np.arange(start, start + length) % self.capacity
                                    for start, length in zip(starts, lengths)])
        slot = np.empty(self.capacity, np.int64)
        slot[game_rows] = np.arange(len(game_rows))
        new_root_values = self.root_values[game_rows]
        new_root_values[slot[rows]] = root_values
        with np.errstate(over="ignore", invalid="ignore"):
            values = value_targets(self.rewards[game_rows], new_root_values,
                                   self.config.td_steps, self.config.discount, lengths,
                                   self.truncated[starts % self.capacity])
        if not np.isfinite(values).all():
            raise ValueError("refresh_targets: root values overflow float32 in the value "
                             "targets")
        self.policies[rows] = policies
        self.root_values[game_rows] = new_root_values
        self.values[game_rows] = values
        return len(ids)

    # ----- saving (safe formats only: arrays in .npz, the rest as JSON) -----

    ARRAYS = ("observations", "actions", "rewards", "to_play", "root_values", "policies",
              "legal", "values", "position", "length", "position_id", "priorities", "truncated")
    ADDED_LATER = ("truncated", "legal")  # arrays a state saved before them lacks

    def state(self) -> tuple[dict[str, np.ndarray], dict]:
        """Arrays and JSON-serialisable metadata that `restore` takes back exactly."""
        arrays = {name: getattr(self, name) for name in self.ARRAYS}
        arrays["games"] = np.array(self.games, np.int64).reshape(-1, 2)
        meta = {"total_positions": self.total_positions, "total_games": self.total_games,
                "reanalyse_from": self.reanalyse_from, "rng": self.rng.bit_generator.state}
        return arrays, meta

    def restore(self, arrays: dict[str, np.ndarray], meta: dict) -> None:
        for name in self.ARRAYS:
            current = getattr(self, name)
            stored = arrays.get(name)
            if stored is None and name in self.ADDED_LATER:
                stored = earlier_default(name, arrays)
            if stored is None or stored.shape != current.shape or stored.dtype != current.dtype:
                got = "missing" if stored is None else f"{stored.shape} {stored.dtype}"
                raise ValueError(f"replay state: {name} is {got}, expected {current.shape} "
                                 f"{current.dtype} (another game or replay_capacity?)")
            current[...] = stored
        self.games = deque((int(first), int(length)) for first, length in arrays["games"])
        self.total_positions = int(meta["total_positions"])
        self.total_games = int(meta["total_games"])
        self.reanalyse_from = int(meta.get("reanalyse_from", 0))
        self.rng.bit_generator.state = meta["rng"]


def earlier_default(name: str, arrays: dict[str, np.ndarray]) -> np.ndarray:
    """What an array added later stands for in a buffer saved before it: no game was cut by a
    time limit; the legal moves are those the search visited and the move played."""
    if name == "legal":
        return legal_from_search(arrays["policies"], arrays["actions"])
    return np.zeros(len(arrays["actions"]), bool)


def stored_games(arrays: dict[str, np.ndarray], priority_alpha: float
                 ) -> Iterator[tuple[GameRecord, np.ndarray]]:
    """The games of a saved buffer (`ReplayBuffer.state()`'s arrays), oldest first, each with
    the value errors [T] its priorities stand for: what moves a buffer into another store."""
    arrays = {**arrays, **{name: earlier_default(name, arrays)
                           for name in ReplayBuffer.ADDED_LATER if name not in arrays}}
    capacity = len(arrays["actions"])
    for first, length in arrays["games"]:
        rows = np.arange(first, first + length) % capacity
        record = GameRecord(*(arrays[name][rows] for name in RECORD_FIELDS),
                            truncated=bool(arrays["truncated"][rows[0]]))
        priorities = arrays["priorities"][rows]
        errors = (priorities ** (1.0 / priority_alpha) if priority_alpha > 0
                  else np.ones_like(priorities))
        yield record, errors
