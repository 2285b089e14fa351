"""Vectorised self-play: N game slots in lockstep, one batched search per move for all of them.

A slot whose game ends starts a new game at once, so every search runs at full batch (no shrinking
batch, no stragglers). `play_games` can split the slots over K actor threads that share one
inference queue: while one actor waits for the network, another runs its GIL-free tree search.
"""

from __future__ import annotations

import threading
import time
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
    """One actor: `num_envs` games searched together, move after move."""

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
        self.mcts = MCTS(tree, rng, self.stopwatch)
        self._trajectories = [TrajectoryBuilder() for _ in self.games]
        self.positions = 0  # moves played in all slots

    def step(self) -> list[GameRecord]:
        """Play one move in every slot; return the games that ended with it."""
        games = self.games
        observations = np.stack([game.observation() for game in games])
        legal = np.stack([game.legal_actions() for game in games])
        to_play = np.array([game.to_play() for game in games], dtype=np.int32)
        move_number = np.array([len(t) for t in self._trajectories], dtype=np.int32)
        result = self.mcts.run(self.model, observations, legal, to_play, move_number)
        finished = []
        for slot, (game, trajectory) in enumerate(zip(games, self._trajectories)):
            action = int(result.actions[slot])
            rewards = game.step(action)
            trajectory.add(observations[slot], action, rewards, int(to_play[slot]),
                           result.root_value[slot], result.policy[slot])
            if game.terminal():
                finished.append(trajectory.finish())
                game.reset()
        self.positions += len(games)
        self.stopwatch.lap("other")
        return finished

    def play(self, num_games: int) -> list[GameRecord]:
        """Step until at least `num_games` games have ended (slots keep their games in flight)."""
        finished: list[GameRecord] = []
        while len(finished) < num_games:
            finished.extend(self.step())
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
               seed: int | None = None, add_noise: bool = True) -> SelfPlayReport:
    """Play at least `num_games` games with `num_envs` slots over `num_actors` threads.

    Defaults come from the config (`num_envs`, `num_actors`, `seed`); with several actors the
    model is wrapped in a `QueuedModel` built from the config's inference settings.
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
    games: list[GameRecord] = []
    lock = threading.Lock()
    done = threading.Event()
    failures: list[BaseException] = []

    def run(actor: VectorisedSelfPlay) -> None:
        actor.stopwatch.reset()
        try:
            while not done.is_set():
                finished = actor.step()
                with lock:
                    games.extend(finished)
                    if len(games) >= num_games:
                        done.set()
        except BaseException as error:  # reported to the caller below
            failures.append(error)
            done.set()

    start = time.perf_counter()
    try:
        if num_actors == 1:
            run(actors[0])
        else:
            threads = [threading.Thread(target=run, args=(actor,), name=f"actor-{i}")
                       for i, actor in enumerate(actors)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    finally:
        if queued is not None:
            queued.close()
    if failures:
        raise failures[0]
    seconds = time.perf_counter() - start
    phases: dict[str, float] = {}
    for actor in actors:
        for phase, seconds in actor.stopwatch.totals.items():
            phases[phase] = phases.get(phase, 0.0) + seconds
    return SelfPlayReport(games=games, positions=sum(actor.positions for actor in actors),
                          seconds=seconds, phase_seconds=phases)
