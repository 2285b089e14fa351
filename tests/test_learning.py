"""The learning regression test: short bandit runs must learn, on every seed, so that a change
that breaks learning cannot land unnoticed.

Why this setting: the bandit with its hidden success probability fixed at 0.9 has one clear
lesson (the risky arm pays 0.9 a pull, the safe one 0.5), so every part of the learner
(self-play, search, replay targets and priorities, network, optimiser) has to work, and seeds
agree. Playing safe scores 10, uniform random play 14, always risky 18. The bare bandit
(success probability drawn per episode) is too seed-sensitive for a test of minutes: at 1,500
steps three seeds spread from 10.3 to 11.5 (docs/experiments.md).

Two checks, because either alone can pass by luck: the evaluation (deterministic play, which an
untrained network can get right by chance when its arbitrary preference happens to be the risky
arm) and the value the network predicts for the first move (about the return of self-play, whose
moves are sampled; an untrained network predicts about 0).

Measured on the 2-core development machine (2026-12-03, the bandit's config of that day: Q
normalised per node, value loss weighted 0.25) at STEPS steps and games, EPISODES evaluation
episodes, seeds 0-2: evaluation 18.04, 17.92, 17.94; first-move value 16.21, 17.57, 15.33. A
learner that does not learn (learning rate 1e-8), seed 0: evaluation 18.04 by chance, value
1.98.
"""

import json

import numpy as np
import pytest

from muzero import load_agent
from muzero.plugins import load_game
from muzero.reporting import EVALUATIONS
from muzero.synchronous import SynchronousRun

BANDIT = load_game("onearmbandit")
SEEDS = (0, 1, 2)
STEPS = 512
EPISODES = 500
OPTIONS = {"horizon": 20, "safe_reward": 0.5, "success_probability": 0.9}
MEAN_RETURN_AT_LEAST = 17.0
RETURN_AT_LEAST = 16.0
FIRST_VALUE_RANGE = (12.0, 18.5)


def short_bandit_run(seed: int, run_dir, **changes) -> tuple[float, float]:
    """Train; return (mean evaluation return, the network's value of the first move)."""
    config = BANDIT.make_config().replace(
        seed=seed, num_games=STEPS, num_steps=STEPS, checkpoint_interval=STEPS,
        num_eval_games=EPISODES, game_options=OPTIONS, **changes)
    SynchronousRun(BANDIT, config, run_dir, progress_bars=False, log=lambda _: None).run()
    record = json.loads((run_dir / EVALUATIONS).read_text().splitlines()[-1])
    agent = load_agent(run_dir)
    first = BANDIT.make_game(config, np.random.default_rng(0)).observation()[None]
    value = float(agent.model.initial_inference(first).value[0, 0])
    return record["evaluation"]["returns"]["mean"], value


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return [short_bandit_run(seed, tmp_path_factory.mktemp(f"seed{seed}")) for seed in SEEDS]


def test_short_bandit_runs_learn_to_pull_the_better_arm(runs):
    returns = [mean for mean, _ in runs]
    assert sum(returns) / len(returns) >= MEAN_RETURN_AT_LEAST, returns
    assert min(returns) >= RETURN_AT_LEAST, returns


def test_short_bandit_runs_learn_the_value_of_the_first_move(runs):
    low, high = FIRST_VALUE_RANGE
    values = [value for _, value in runs]
    assert all(low <= value <= high for value in values), values
