"""Self-play throughput for tic-tac-toe with the default network (and CartPole through the
Gymnasium adapter), and where the time goes.

Positions/s at --envs 1, 16, 64, 256 (one actor); thread configurations at --envs 64 (actor
threads sharing the inference queue, queue workers, TF intra-op threads); the inference-only
bound (the same network calls on random inputs, back to back); peak RSS at --envs 256; memory
over 1000 games.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from muzero.batching.inference import inference_for_game
from muzero.batching.selfplay import VectorisedSelfPlay
from muzero.plugins import load_game

PLUGIN = load_game("tictactoe")
CONFIG = PLUGIN.make_config()
MOVES = {1: 20, 16: 10, 64: 6, 256: 3}


@pytest.fixture(scope="module")
def inference():
    model = inference_for_game(PLUGIN, CONFIG)
    model.warm_up()
    return model


@pytest.mark.parametrize("envs", [1, 16, 64, 256])
def test_selfplay_throughput(benchmark, record, inference, envs):
    actor = VectorisedSelfPlay(PLUGIN, CONFIG, inference, envs, np.random.default_rng(0))
    actor.step()  # warm-up: Numba kernels loaded, buffers allocated

    def play_moves():
        for _ in range(MOVES[envs]):
            actor.step()

    actor.stopwatch.reset()
    benchmark.pedantic(play_moves, rounds=3, iterations=1)
    seconds = benchmark.stats.stats.mean / MOVES[envs]
    record(f"selfplay envs={envs} positions/s", envs / seconds, benchmark)
    shares = actor.stopwatch.shares()
    for phase in ("network", "search", "hidden", "environment", "other"):
        record(f"selfplay envs={envs} share {phase}", shares.get(phase, 0.0), benchmark)
    record(f"selfplay envs={envs} share not network", 1.0 - shares["network"], benchmark)


def test_cartpole_selfplay_throughput(benchmark, record):
    """Gymnasium's CartPole at --envs 64 with its derived config: positions/s and the share of
    self-play time spent reading and stepping the environments (the adapter included)."""
    cartpole = load_game("gym:CartPole-v1")
    config = cartpole.make_config()
    model = inference_for_game(cartpole, config)
    model.warm_up(64)
    actor = VectorisedSelfPlay(cartpole, config, model, 64, np.random.default_rng(0))
    actor.step()
    moves = 10

    def play_moves():
        for _ in range(moves):
            actor.step()

    actor.stopwatch.reset()
    benchmark.pedantic(play_moves, rounds=3, iterations=1)
    record("cartpole selfplay envs=64 positions/s", 64 * moves / benchmark.stats.stats.mean,
           benchmark)
    shares = actor.stopwatch.shares()
    record("cartpole selfplay envs=64 share environment", shares.get("environment", 0.0),
           benchmark)
    record("cartpole selfplay envs=64 share network", shares.get("network", 0.0), benchmark)


CONFIGURATION_SCRIPT = textwrap.dedent("""
    import sys, numpy as np
    from muzero.batching.inference import inference_for_game
    from muzero.batching.selfplay import play_games
    from muzero.plugins import load_game
    from muzero.runtime import configure_tensorflow
    plugin = load_game("tictactoe")
    actors, workers, threads = (int(x) for x in sys.argv[1:4])
    config = plugin.make_config().replace(num_envs=64, num_actors=actors,
                                          inference_workers=workers, tf_threads=threads)
    configure_tensorflow(config)
    model = inference_for_game(plugin, config)
    model.warm_up(64)
    play_games(plugin, config, model, 64)
    print(play_games(plugin, config, model, 320, seed=1).positions_per_second)
""")


@pytest.mark.parametrize("actors, workers, threads", [(1, 1, 0), (1, 1, 1), (2, 1, 0), (2, 1, 1),
                                                      (2, 2, 1), (2, 2, 0)])
def test_selfplay_thread_configurations(benchmark, record, actors, workers, threads):
    """--envs 64 split over actor threads, queue workers and TF intra-op threads (0: per core).

    Each configuration runs in a fresh process: TF's thread count is fixed at start-up.
    """
    def run():
        output = subprocess.run(
            [sys.executable, "-c", CONFIGURATION_SCRIPT, str(actors), str(workers), str(threads)],
            check=True, capture_output=True, text=True,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}).stdout
        return float(output.split()[-1])

    rate = benchmark.pedantic(run, rounds=1, iterations=1)
    record(f"selfplay envs=64 actors={actors} workers={workers} tf_threads={threads} "
           f"positions/s", rate, benchmark)


@pytest.mark.parametrize("envs", [1, 64, 256])
def test_inference_only_bound(benchmark, record, inference, envs):
    """1 initial + S recurrent calls per move on random inputs: the ceiling for self-play."""
    rng = np.random.default_rng(0)
    observations = rng.random((envs, 3, 3, 3)).astype(np.float32)
    hidden = inference.initial_inference(observations).hidden
    actions = rng.integers(0, 9, envs).astype(np.int32)

    def one_move():
        inference.initial_inference(observations)
        for _ in range(CONFIG.num_simulations):
            inference.recurrent_inference(hidden, actions)

    benchmark.pedantic(one_move, rounds=3, iterations=1, warmup_rounds=1)
    record(f"inference-only bound envs={envs} positions/s", envs / benchmark.stats.stats.mean,
           benchmark)


PEAK_RSS_SCRIPT = textwrap.dedent("""
    import resource, numpy as np
    from muzero.batching.inference import inference_for_game
    from muzero.batching.selfplay import VectorisedSelfPlay
    from muzero.plugins import load_game
    plugin = load_game("tictactoe")
    config = plugin.make_config()
    model = inference_for_game(plugin, config)
    actor = VectorisedSelfPlay(plugin, config, model, 256, np.random.default_rng(0))
    games = actor.play(300)
    print(len(games), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
""")


def test_peak_rss_at_256_envs(benchmark, record):
    """A fresh process plays 300 games at --envs 256; its peak resident set size."""
    def run():
        output = subprocess.run([sys.executable, "-c", PEAK_RSS_SCRIPT], check=True,
                                capture_output=True, text=True,
                                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}).stdout
        return int(output.split()[-1]) / 1024

    peak_mib = benchmark.pedantic(run, rounds=1, iterations=1)
    record("selfplay envs=256 peak RSS (MiB)", peak_mib, benchmark)


def _resident_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


def test_memory_flat_over_1000_games(benchmark, record, inference):
    actor = VectorisedSelfPlay(PLUGIN, CONFIG, inference, 64, np.random.default_rng(1))
    samples = []

    def play():
        games = 0
        while games < 1000:
            games += len(actor.step())
            samples.append((games, _resident_mib()))
        return games

    benchmark.pedantic(play, rounds=1, iterations=1)
    after_100 = next(rss for games, rss in samples if games >= 100)
    record("selfplay RSS after 100 games (MiB)", after_100, benchmark)
    record("selfplay RSS after 1000 games (MiB)", samples[-1][1], benchmark)
    assert samples[-1][1] - after_100 < 50, "memory grows with games played"


def test_reanalysis_throughput(benchmark, record, inference):
    """Reanalyse: stored tic-tac-toe positions searched again and written back, in batches of
    `inference_batch_size` (256) rather than self-play's 64 slots: positions/s, end to end
    through the replay buffer, for the time a `--reanalyse-ratio` adds to a run."""
    from muzero.loops import LocalWeights, Reanalyser
    from muzero.replay import ReplayBuffer

    actor = VectorisedSelfPlay(PLUGIN, CONFIG, inference, 64, np.random.default_rng(0))
    replay = ReplayBuffer(CONFIG, (3, 3, 3), 9, 2, np.random.default_rng(0))
    replay.add_games(actor.play(256))
    weights = LocalWeights()
    weights.publish(inference.network.get_weights(), 0)
    reanalyser = Reanalyser(PLUGIN, CONFIG.replace(reanalyse_ratio=1.0), inference)
    reanalyser.round(replay, weights, 256)  # warm-up
    start = reanalyser.reanalysed

    def reanalyse_1024_positions():  # whole games: a few positions more
        reanalyser.round(replay, weights, reanalyser.reanalysed + 1024)

    benchmark.pedantic(reanalyse_1024_positions, rounds=3, iterations=1)
    positions = (reanalyser.reanalysed - start) / 3
    record("reanalysis batch=256 positions/s", positions / benchmark.stats.stats.mean,
           benchmark)
