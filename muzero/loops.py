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
from muzero.replay import TrainingBatch
from muzero.training import LOSS_NAMES, Learner

WeightList = list[np.ndarray]


class Replay(Protocol):
    def add_games(self, games: Sequence[GameRecord]) -> None: ...

    def sample(self, batch_size: int) -> TrainingBatch: ...

    def update_priorities(self, indices: np.ndarray, errors: np.ndarray) -> None: ...


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


class Actor:
    """Self-play with its own copy of the network, refreshed from `Weights` before each round."""

    def __init__(self, plugin: GamePlugin, config: Config, inference: BatchedInference):
        self.plugin = plugin
        self.config = config
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
