"""Vectorised self-play: N game slots in lockstep, one batched search per move for all of them.

A slot whose game ends starts a new game at once, so searches run at full batch until the last
games of a call, which search only the rows still playing. `play_games` can split the slots over K
actor threads that share one inference queue: while one actor waits for the network, another runs
its GIL-free tree search.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from muzero.batching.queue import QueuedModel
from muzero.config import Config
from muzero.plugins import GamePlugin
from muzero.records import GameRecord, TrajectoryBuilder
from muzero.search.batched import NumbaTree
from muzero.search.mcts import MCTS
from muzero.search.model import Model
from muzero.search.tree import SearchSettings
from muzero.stopwatch import Stopwatch


class VectorisedSelfPlay:
    """One actor: up to `num_envs` games searched together, move after move."""

    def __init__(self, plugin: GamePlugin, config: Config, model: Model, num_envs: int,
                 rng: np.random.Generator, add_noise: bool = True):
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.model = model
        self.games = [plugin.make_game(config, rng) for _ in range(num_envs)]
        first = self.games[0]
        tree = NumbaTree(num_envs, first.num_actions, first.num_players,
                         SearchSettings.from_config(config, add_noise))
        self.stopwatch = Stopwatch()
        self.rng = rng
        self.random_move_probability = config.random_move_probability if add_noise else 0.0
        self.mcts = MCTS(tree, rng, self.stopwatch)
        self._trajectories = [TrajectoryBuilder() for _ in self.games]
        self.positions = 0  # moves played in all slots

    def step(self, slots: Sequence[int] | None = None) -> list[tuple[int, GameRecord]]:
        """Play one move in each of `slots` (default: all) with one batched search.

        Returns (slot, record) for the games that ended with this move; those slots hold a
        freshly reset game afterwards.
        """
        slots = range(len(self.games)) if slots is None else slots
        games = [self.games[slot] for slot in slots]
        trajectories = [self._trajectories[slot] for slot in slots]
        observations = np.stack([game.observation() for game in games])
        legal = np.stack([game.legal_actions() for game in games])
        to_play = np.array([game.to_play() for game in games], dtype=np.int32)
        move_number = np.array([len(t) for t in trajectories], dtype=np.int32)
        self.stopwatch.lap("environment")  # reading the games' states
        result = self.mcts.run(self.model, observations, legal, to_play, move_number)
        actions = self._explore(result.actions, legal)
        finished = []
        for row, (slot, game, trajectory) in enumerate(zip(slots, games, trajectories)):
            action = int(actions[row])
            rewards = game.step(action)
            trajectory.add(observations[row], action, rewards, int(to_play[row]),
                           result.root_value[row], result.policy[row], legal[row])
            if game.terminal():
                finished.append((slot, trajectory.finish(game.truncated())))
                game.reset()
        self.positions += len(games)
        self.stopwatch.lap("environment")  # stepping the games, recording the moves
        return finished

    def _explore(self, actions: np.ndarray, legal: np.ndarray) -> np.ndarray:
        """Each row's action, replaced by a uniformly random legal one with probability
        `random_move_probability` (the stored policy and value stay the search's). Draws
        nothing when the probability is 0, so such runs keep their random streams."""
        if not self.random_move_probability:
            return actions
        actions = actions.copy()
        for row in np.flatnonzero(self.rng.random(len(actions)) < self.random_move_probability):
            actions[row] = self.rng.choice(np.flatnonzero(legal[row]))
        return actions

    def play(self, num_games: int, stop: threading.Event | None = None,
             progress: Callable[[int], None] | None = None) -> list[GameRecord]:
        """Play exactly `num_games` whole games, in the order they end.

        Every slot starts a game; a slot whose game ends starts another while fewer than
        `num_games` have started, otherwise it rests, so the last moves search fewer rows. No game
        is left half played, which makes a call's games depend only on the generator's state.
        `stop` (the caller's, or set by another actor's failure) ends the call early;
        `progress(n)` hears of every n games that end.
        """
        for game, trajectory in zip(self.games, self._trajectories):
            game.reset()
            trajectory.clear()
        active = list(range(min(num_games, len(self.games))))
        started = len(active)
        finished: list[GameRecord] = []
        while active and not (stop is not None and stop.is_set()):
            ended = self.step(active)
            if ended and progress is not None:
                progress(len(ended))
            for slot, record in ended:
                finished.append(record)
                if started < num_games:
                    started += 1
                else:
                    active.remove(slot)
        return finished


@dataclass
class SelfPlayReport:
    """What a `play_games` run produced and where its time went."""

    games: list[GameRecord]
    positions: int
    seconds: float
    phase_seconds: dict[str, float]  # stopwatch phases, summed over actors

    @property
    def positions_per_second(self) -> float:
        return self.positions / self.seconds


def _split(total: int, parts: int) -> list[int]:
    """`total` slots over `parts` actors, sizes differing by at most one."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def play_games(plugin: GamePlugin, config: Config, model: Model, num_games: int,
               num_envs: int | None = None, num_actors: int | None = None,
               seed: int | Sequence[int] | None = None, add_noise: bool = True,
               progress: Callable[[int], None] | None = None,
               stop: threading.Event | None = None) -> SelfPlayReport:
    """Play exactly `num_games` games with `num_envs` slots over `num_actors` threads.

    Defaults come from the config (`num_envs`, `num_actors`, `seed`); `seed` may be a sequence
    of integers (e.g. the run's seed and an iteration number). Each actor plays its share of the
    games from its own generator and the games come back actor by actor, so the result depends
    on the seed only, not on thread timing. With several actors the model is wrapped in a
    `QueuedModel` built from the config's inference settings. `progress(n)` hears of every n
    games that end (from the actor threads). Setting `stop` ends the call within one move, with
    the games finished so far (an actor's failure sets it too, to stop the others).
    """
    num_envs = config.num_envs if num_envs is None else num_envs
    num_actors = config.num_actors if num_actors is None else num_actors
    if not 1 <= num_actors <= num_envs:
        raise ValueError(f"num_actors must be in [1, num_envs={num_envs}], got {num_actors}")
    seeds = np.random.SeedSequence(config.seed if seed is None else seed).spawn(num_actors)
    queued = (QueuedModel(model, num_actors, config.inference_batch_size,
                          config.inference_wait_ms / 1000.0, config.inference_workers)
              if num_actors > 1 else None)
    actors = [VectorisedSelfPlay(plugin, config, queued or model, size,
                                 np.random.default_rng(seed_sequence), add_noise)
              for size, seed_sequence in zip(_split(num_envs, num_actors), seeds)]
    shares = _split(num_games, num_actors)
    results: list[list[GameRecord]] = [[] for _ in actors]
    stop = threading.Event() if stop is None else stop
    failures: list[BaseException] = []

    def run(index: int) -> None:
        actors[index].stopwatch.reset()
        try:
            results[index] = actors[index].play(shares[index], stop, progress)
        except BaseException as error:  # reported to the caller below
            failures.append(error)
            stop.set()

    start = time.perf_counter()
    try:
        if num_actors == 1:
            run(0)
        else:
            threads = [threading.Thread(target=run, args=(i,), name=f"actor-{i}")
                       for i in range(num_actors)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    finally:
        if queued is not None:
            queued.close()
    if failures:
        raise failures[0]
    wall_seconds = time.perf_counter() - start
    phases: dict[str, float] = {}
    for actor in actors:
        for phase, phase_seconds in actor.stopwatch.totals.items():
            phases[phase] = phases.get(phase, 0.0) + phase_seconds
    return SelfPlayReport(games=[game for games in results for game in games],
                          positions=sum(actor.positions for actor in actors),
                          seconds=wall_seconds, phase_seconds=phases)
