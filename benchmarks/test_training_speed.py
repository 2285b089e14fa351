"""Learner throughput at each game's default batch size and unroll (OpenSpiel's games: the derived
config), and what building a batch from the replay buffer costs next to a train step (goal: at
most 5%).

The replay buffer is filled to its default capacity with synthetic games of the game's shape, so
sampling pays for the full ring (priorities over every row).
"""

from __future__ import annotations

import numpy as np
import pytest

from muzero.network import network_for_game
from muzero.plugins import load_game
from muzero.records import GameRecord
from muzero.replay import ReplayBuffer
from muzero.symmetry import symmetries_from_plugin
from muzero.training import Learner

STEPS = 30


def full_replay(plugin, config) -> ReplayBuffer:
    game = plugin.make_game(config, np.random.default_rng(0))
    rng = np.random.default_rng(0)
    replay = ReplayBuffer(config, game.observation_shape, game.num_actions, game.num_players,
                          np.random.default_rng(1), symmetries_from_plugin(plugin, config))
    length = 9 if game.num_players == 2 else 20
    games = []
    while sum(len(g) for g in games) < config.replay_capacity:
        policies = rng.random((length, game.num_actions)).astype(np.float32)
        games.append(GameRecord(
            rng.random((length,) + game.observation_shape, dtype=np.float32),
            rng.integers(game.num_actions, size=length).astype(np.int32),
            rng.normal(size=(length, game.num_players)).astype(np.float32),
            (np.arange(length) % game.num_players).astype(np.int32),
            rng.normal(size=(length, game.num_players)).astype(np.float32),
            policies / policies.sum(axis=1, keepdims=True),
            np.ones((length, game.num_actions), bool)))
    replay.add_games(games)
    return replay


@pytest.fixture(scope="module", params=["tictactoe", "onearmbandit", "spiel:tic_tac_toe",
                                         "spiel:connect_four"])
def setup(request):
    plugin = load_game(request.param)
    config = plugin.make_config()
    replay = full_replay(plugin, config)
    learner = Learner(network_for_game(plugin, config), config)
    learner.train_step(replay.sample(config.batch_size))  # trace and compile
    return request.param, config, replay, learner


def test_train_steps_per_second(benchmark, record, setup):
    name, config, replay, learner = setup
    batches = [replay.sample(config.batch_size) for _ in range(STEPS)]

    def train():
        for batch in batches:
            learner.train_step(batch)

    benchmark.pedantic(train, rounds=3, iterations=1, warmup_rounds=1)
    seconds = benchmark.stats.stats.mean / STEPS
    record(f"train {name} batch={config.batch_size} K={config.num_unroll_steps} steps/s",
           1 / seconds, benchmark)
    record(f"train {name} positions trained/s", config.batch_size / seconds, benchmark)
    record(f"train {name} ms per step", 1000 * seconds, benchmark)


def test_batch_assembly_share_of_a_train_step(benchmark, record, setup):
    name, config, replay, learner = setup

    def sample_and_update():
        for _ in range(STEPS):
            batch = replay.sample(config.batch_size)
            replay.update_priorities(batch.indices, np.abs(batch.target_values[:, 0, 0]))

    benchmark.pedantic(sample_and_update, rounds=3, iterations=1, warmup_rounds=1)
    sample_ms = 1000 * benchmark.stats.stats.mean / STEPS
    record(f"replay {name} capacity={config.replay_capacity} sample+update ms", sample_ms,
           benchmark)
    step_ms = 1000 * _time_steps(learner, replay, config)
    record(f"replay {name} share of a train step", sample_ms / (sample_ms + step_ms), benchmark)


def _time_steps(learner, replay, config) -> float:
    import time

    batch = replay.sample(config.batch_size)
    start = time.perf_counter()
    for _ in range(STEPS):
        learner.train_step(batch)
    return (time.perf_counter() - start) / STEPS


def test_learner_round_time_left_to_batch_assembly(benchmark, record, setup):
    """A whole learner round (batches drawn one ahead in a background thread, priorities
    reported) against bare train steps on one batch: the difference is what batch assembly
    still adds to training once it overlaps the train step."""
    from muzero.loops import LocalWeights, learner_round

    name, config, replay, learner = setup
    benchmark.pedantic(lambda: learner_round(learner, replay, LocalWeights(), STEPS),
                       rounds=3, iterations=1, warmup_rounds=1)
    round_ms = 1000 * benchmark.stats.stats.mean / STEPS
    step_ms = 1000 * _time_steps(learner, replay, config)
    record(f"learner round {name} ms per step", round_ms, benchmark)
    record(f"learner round {name} time beyond bare train steps",
           max(round_ms - step_ms, 0.0) / round_ms, benchmark)
