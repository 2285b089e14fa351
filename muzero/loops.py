"""One pair of loops, two wirings: the actor round, the learner round, and the evaluation of the
weights they produce.

Both are written against two small interfaces: where games go and batches come from (`Replay`),
and where weights go and come from (`Weights`). Synchronous mode wires them to a local
`ReplayBuffer` and a `LocalWeights` holder in one process; the asynchronous mode wires the same
rounds to an HTTP client that speaks to a server holding the same `ReplayBuffer`.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from muzero.agent import Agent
from muzero.batching.inference import BatchedInference
from muzero.batching.selfplay import SelfPlayReport, play_games
from muzero.config import Config
from muzero.evaluation import evaluate
from muzero.plugins import GamePlugin
from muzero.records import GameRecord
from muzero.replay import StoredPositions, TrainingBatch
from muzero.search.batched import NumbaTree
from muzero.search.mcts import MCTS
from muzero.search.tree import SearchSettings
from muzero.training import LOSS_NAMES, Learner

WeightList = list[np.ndarray]


class Replay(Protocol):
    def add_games(self, games: Sequence[GameRecord]) -> None: ...

    def sample(self, batch_size: int) -> TrainingBatch: ...

    def update_priorities(self, indices: np.ndarray, errors: np.ndarray) -> None: ...

    def positions_to_reanalyse(self, count: int) -> StoredPositions: ...

    def refresh_targets(self, position_ids: np.ndarray, policies: np.ndarray,
                        root_values: np.ndarray) -> int: ...


class Weights(Protocol):
    step: int  # training steps of the newest weights fetched or published

    def latest(self, known_version: int | None) -> tuple[int, WeightList] | None:
        """The newest weights and their version, or None if `known_version` is the newest."""

    def publish(self, weights: WeightList, step: int) -> int:
        """Store new weights trained for `step` steps; return their version."""


class LocalWeights:
    """The in-process `Weights`: the last published weights, version counting from 1."""

    def __init__(self) -> None:
        self.version = 0
        self.step = 0
        self._weights: WeightList | None = None

    def latest(self, known_version: int | None) -> tuple[int, WeightList] | None:
        if self._weights is None or known_version == self.version:
            return None
        return self.version, self._weights

    def publish(self, weights: WeightList, step: int) -> int:
        self._weights = [np.array(array, copy=True) for array in weights]
        self.step = step
        self.version += 1
        return self.version


def scheduled_temperature(config: Config, step: int) -> float:
    """Self-play's visit-count temperature after `step` training steps (`temperature_schedule`).
    """
    if config.temperature_schedule == "constant":
        return config.temperature
    progress = step / max(config.num_steps, 1)
    return config.temperature * (1.0 if progress < 0.5 else 0.5 if progress < 0.75 else 0.25)


class WeightsFollower:
    """A network kept at the newest weights of a `Weights`, fetched only when they change."""

    def __init__(self, inference: BatchedInference):
        self.network = inference.network
        self.model = inference
        self.version: int | None = None

    def refresh(self, weights: Weights) -> bool:
        update = weights.latest(self.version)
        if update is None:
            return False
        self.version, arrays = update
        self.network.set_weights(arrays)
        return True


class Actor(WeightsFollower):
    """Self-play with its own copy of the network, refreshed from `Weights` before each round."""

    def __init__(self, plugin: GamePlugin, config: Config, inference: BatchedInference):
        super().__init__(inference)
        self.plugin = plugin
        self.config = config

    def round(self, replay: Replay, weights: Weights, num_games: int, seed: Sequence[int],
              progress: Callable[[int], None] | None = None,
              stop: threading.Event | None = None) -> SelfPlayReport | None:
        """Fetch the latest weights, play `num_games` games, hand them to `replay`.

        If `stop` is set during the round, its games are dropped and None is returned: the
        round replays whole under the same seed when the run resumes."""
        self.refresh(weights)
        config = self.config.replace(temperature=scheduled_temperature(self.config,
                                                                       weights.step))
        report = play_games(self.plugin, config, self.model, num_games, seed=seed,
                            progress=progress, stop=stop)
        if stop is not None and stop.is_set():
            return None
        replay.add_games(report.games)
        return report


class Reanalyser(WeightsFollower):
    """MuZero Reanalyse: stored positions searched again with the newest weights, their policy
    and value targets replaced by the new search's, so that old games teach what the current
    network would do there rather than what an older one did.

    The search is self-play's, root noise included, so that the new targets are what
    self-play would record there today (without the noise the network's confident priors
    sharpen the targets of their own search round after round: on spiel:tic_tac_toe the policy
    loss fell to 0.41 against self-play's 1.5, and the first player lost every game to minimax;
    docs/experiments.md). A run reanalyses `reanalyse_ratio` positions per position played:
    `round` catches up with the positions played so far, in whole games, those with the oldest
    targets first.
    """

    def __init__(self, plugin: GamePlugin, config: Config, inference: BatchedInference):
        super().__init__(inference)
        self.ratio = config.reanalyse_ratio
        self.capacity = config.replay_capacity
        self.reanalysed = 0  # positions searched again so far
        game = plugin.make_game(config, np.random.default_rng(0))
        tree = NumbaTree(config.inference_batch_size, game.num_actions, game.num_players,
                         SearchSettings.from_config(config))
        self.mcts = MCTS(tree, np.random.default_rng([config.seed, 3]))  # the root noise

    def state(self) -> dict:
        """What `restore` takes back (JSON-serialisable), for an exact resume."""
        return {"reanalysed": self.reanalysed, "rng": self.mcts.rng.bit_generator.state}

    def restore(self, state: dict) -> None:
        self.reanalysed = int(state["reanalysed"])
        self.mcts.rng.bit_generator.state = state["rng"]

    def round(self, replay: Replay, weights: Weights, positions_played: int) -> int:
        """Reanalyse until `reanalyse_ratio * positions_played` positions have been, at most
        a replay window's worth in one round (more would search games again with the same
        weights); return the positions refreshed."""
        target = int(self.ratio * positions_played)
        self.reanalysed = max(self.reanalysed, target - self.capacity)
        refreshed = 0
        if self.reanalysed < target:
            self.refresh(weights)
        while self.reanalysed < target:  # a server sends a bounded number per request
            stored = replay.positions_to_reanalyse(target - self.reanalysed)
            policies, root_values = self.search(stored)
            self.reanalysed += len(stored.position_ids)
            refreshed += replay.refresh_targets(stored.position_ids, policies, root_values)
        return refreshed

    def search(self, stored: StoredPositions) -> tuple[np.ndarray, np.ndarray]:
        """The search's policy [N, A] and root values [N, P] of every stored position."""
        batch = self.mcts.tree.batch_size
        results = [self.mcts.run(self.model, stored.observations[start:start + batch],
                                 stored.legal[start:start + batch],
                                 stored.to_play[start:start + batch],
                                 stored.move_number[start:start + batch])
                   for start in range(0, len(stored.position_ids), batch)]
        return (np.concatenate([result.policy for result in results]),
                np.concatenate([result.root_value for result in results]))


class Prefetcher:
    """Draws a learner round's `count` batches from `replay` in a background thread and applies
    the learner's priority updates from that thread, in a fixed order whatever the threads'
    timing, so a seeded run stays reproducible.

    Batch k is drawn once the updates of batches 0 .. k-1-`lag` are applied. With `lag` 0 every
    batch sees the priorities of all batches before it, as prioritized replay assumes; the draw
    then waits for the previous train step. With `lag` 1 the draw (and, in async mode, its HTTP
    round trip) overlaps the previous train step, but the positions that step trains on keep
    their old, high priorities for one more draw and tend to be drawn again. (Measured on the
    bandit, the difference between the two is within seed noise; lag 0 costs synchronous
    tic-tac-toe 10% of its wall time: docs/experiments.md.) Every batch taken must get its
    update.
    """

    def __init__(self, replay: Replay, batch_size: int, count: int, lag: int = 0):
        if lag not in (0, 1):
            raise ValueError(f"lag must be 0 or 1, got {lag}")
        self._replay = replay
        self._lag = lag
        self._batches: queue.Queue = queue.Queue(maxsize=1)
        self._updates: queue.Queue = queue.Queue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, args=(batch_size, count),
                                        daemon=True)

    def __enter__(self) -> Prefetcher:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._updates.put(None)
        while self._thread.is_alive():  # after a failed round, batches nobody will take
            with contextlib.suppress(queue.Empty):
                self._batches.get_nowait()
            self._thread.join(timeout=0.05)
        if self._error is not None and exc_info[0] is None:
            raise self._error

    def _work(self, batch_size: int, count: int) -> None:
        try:
            for k in range(count):
                if k > self._lag and not self._apply_next_update():
                    return
                self._batches.put(self._replay.sample(batch_size))
            while self._apply_next_update():
                pass
        except BaseException as error:  # raised again in the learner's thread
            self._error = error
            self._batches.put(None)

    def _apply_next_update(self) -> bool:
        """Apply the next update in order; False at the end marker."""
        update = self._updates.get()
        if update is None:
            return False
        self._replay.update_priorities(*update)
        return True

    def sample(self, batch_size: int) -> TrainingBatch:
        batch = self._batches.get()
        if batch is None:
            raise self._error
        return batch

    def update_priorities(self, indices: np.ndarray, errors: np.ndarray) -> None:
        self._updates.put((indices, errors))


def learner_round(learner: Learner, replay: Replay, weights: Weights, num_steps: int,
                  progress: Callable[[int], None] | None = None,
                  priority_lag: int = 0) -> dict[str, float]:
    """Train `num_steps` steps on batches from `replay` (drawn by a `Prefetcher` with
    `priority_lag`), report new priorities after each, then publish the weights. Returns the
    mean of each loss over the round."""
    sums = dict.fromkeys(LOSS_NAMES, 0.0)
    with Prefetcher(replay, learner.config.batch_size, num_steps, priority_lag) as batches:
        for _ in range(num_steps):
            batch = batches.sample(learner.config.batch_size)
            result = learner.train_step(batch)
            batches.update_priorities(batch.indices, result.value_errors)
            for name, value in result.losses.items():
                sums[name] += value
            if progress is not None:
                progress(1)
    weights.publish(learner.network.get_weights(), learner.step)
    return {name: total / max(num_steps, 1) for name, total in sums.items()}


class Evaluator:
    """The agent evaluated at checkpoints: the network of `inference` (synchronous mode shares
    the actor's) loaded with the learner's weights, playing `num_eval_games` games against each
    opponent (or for its return) under the run's seed, so every checkpoint meets the same
    games."""

    def __init__(self, plugin: GamePlugin, config: Config, inference: BatchedInference):
        self.plugin = plugin
        self.config = config
        self.network = inference.network
        self.agent = Agent(plugin, config, inference)

    def evaluate(self, weights: WeightList) -> dict | None:
        """The evaluation of `weights`, or None when the run evaluates no games."""
        if self.config.num_eval_games <= 0:
            return None
        self.network.set_weights(weights)
        return evaluate(self.agent, self.plugin, self.config, self.config.num_eval_games,
                        seed=self.config.seed)
