"""The learning regression test: the bandit's bare config must learn on every seed, so that a
change that costs learning cannot land unnoticed.

Why this setting: the bandit (success probability drawn per episode) is the game whose return
fell when shared code changed (issue 14: 11.12 on seed 0 and 10.68 on seed 2, at commit
73fd77f), and its score has an exact yardstick. Each run trains the game's own `make_config()`
in full (3,000 steps and games, under a minute on 2 cores); only its evaluation is left out, which
training does not depend on. The final network's deterministic policy is then scored exactly
(`benchmarks/bandit_exact.py`: one search per reachable position and dynamic programming under
the prior), so the figure has no evaluation noise: what varies is each seed's trajectory.

Thresholds, with the figures they rest on (exact expected return of the final network; Bayes-
optimal 11.912; always safe, always risky and an untrained network's play about 10):
- this code, seeds 0, 1, 2: 11.867, 11.765, 11.816 (mean 11.816; the bare runs' final
  networks, the same training); seeds 3-7, not in the test: 11.800, 11.866, 11.784, 11.561,
  11.867 (the agents, best of two checkpoints), so a seed of this learner can sit 0.56 above
  the floor;
- the code before the bandit's span floor (eaecd2e), seeds 0, 1, 2: 11.751, 11.782, 11.809;
  seed 4 there gave up the risky arm after a dozen successes (11.175);
- commit 73fd77f (the issue's main), seeds 0, 1, 2: 11.172, 11.890, 10.704 (mean 11.255; the
  issue measured 11.12, 11.88, 10.68 by evaluation on another machine);
- this code with learning rate 1e-8 (a learner that does not learn), seeds 0, 1, 2: 10.000 each;
- over eight seeds on an earlier commit with the same mechanisms, the evaluated returns had a
  standard deviation of 0.25 and a worst seed of 11.19 (docs/experiments.md, fourth session).
A mean of 11.5 sits 0.32 below this code and 0.25 above the issue's main; a seed under 11.0
(the issue's seed 2) fails on its own: a drift towards always-safe play, which none of eight
seeds of this learner showed (worst 11.561). All measured on the 2-core development machine,
2026-12-04 (docs/experiments.md, tenth and eleventh sessions).
"""

import pytest

from benchmarks.bandit_exact import agent_policy, expected_return
from muzero.plugins import load_game
from muzero.synchronous import SynchronousRun

BANDIT = load_game("onearmbandit")
SEEDS = (0, 1, 2)
MEAN_EXACT_RETURN_AT_LEAST = 11.5
EXACT_RETURN_AT_LEAST = 11.0


def bare_bandit_run(seed: int, run_dir, **changes) -> float:
    """Train the bandit's own config under `seed`; the exact expected return of its final network.

    One checkpoint at the end and no evaluation games: the trained weights are those of the bare
    command (evaluation does not touch training)."""
    config = BANDIT.make_config()
    config = config.replace(seed=seed, checkpoint_interval=config.num_steps, num_eval_games=0,
                            **changes)
    SynchronousRun(BANDIT, config, run_dir, progress_bars=False, log=lambda _: None).run()
    policy, options = agent_policy(str(run_dir))
    return expected_return(policy, options)


@pytest.fixture(scope="module")
def exact_returns(tmp_path_factory):
    return [bare_bandit_run(seed, tmp_path_factory.mktemp(f"seed{seed}")) for seed in SEEDS]


def test_bare_bandit_runs_learn_on_every_seed(exact_returns):
    assert min(exact_returns) >= EXACT_RETURN_AT_LEAST, exact_returns


def test_bare_bandit_runs_learn_close_to_bayes_optimal_on_average(exact_returns):
    mean = sum(exact_returns) / len(exact_returns)
    assert mean >= MEAN_EXACT_RETURN_AT_LEAST, exact_returns
