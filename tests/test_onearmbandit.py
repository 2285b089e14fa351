from fractions import Fraction
from math import factorial

import numpy as np
import pytest

from benchmarks.bandit_exact import (
    cost_by_direction,
    costliest_decisions,
    expected_return,
    fitted_chances,
    observed_rewards,
    planned_policy,
    positions,
    predicted_rewards,
    print_plans,
    print_values,
    stored_target_means,
)
from games.onearmbandit import (
    DEFAULT_OPTIONS,
    RISKY,
    SAFE,
    BayesOptimalPlayer,
    _bayes_table,
    bayes_optimal_value,
    make_config,
    make_game,
    reference_value,
)
from muzero import load_agent
from muzero.checkpoint import AGENT, load_checkpoint
from muzero.config import Config
from muzero.game import GameOverError, IllegalActionError
from muzero.plugins import load_game
from muzero.synchronous import SynchronousRun


def bayes_policy(options: dict) -> dict:
    """The Bayes-optimal arm in every position with a pull left (safe on ties)."""
    table = _bayes_table(options["horizon"], options["safe_reward"])
    return {(s, f, k): int(table[s + f + k, s, f, RISKY] > table[s + f + k, s, f, SAFE])
            for s, f, k in positions(options["horizon"])}


def bandit(**options):
    config = make_config()
    config = config.replace(game_options={**config.game_options, **options})
    return make_game(config, np.random.default_rng(0)), config


def test_safe_arm_pays_safe_reward_and_episode_lasts_horizon():
    game, _ = bandit(horizon=5, safe_reward=0.5)
    rewards = [game.step(SAFE) for _ in range(5)]
    assert all(r.shape == (1,) and r.dtype == np.float32 and r[0] == 0.5 for r in rewards)
    assert game.terminal() and not game.legal_actions().any()
    with pytest.raises(GameOverError):
        game.step(SAFE)


@pytest.mark.parametrize("x, expected", [(1.0, 1.0), (0.0, 0.0)])
def test_risky_arm_with_fixed_probability(x, expected):
    game, _ = bandit(success_probability=x)
    assert all(game.step(RISKY)[0] == expected for _ in range(20))


def test_risky_arm_frequency_matches_hidden_probability():
    game, _ = bandit(horizon=4000, success_probability=0.3)
    wins = sum(game.step(RISKY)[0] for _ in range(4000))
    assert abs(wins / 4000 - 0.3) < 0.03


def test_observation_encodes_history_counts():
    game, _ = bandit(horizon=10, success_probability=1.0)
    np.testing.assert_array_equal(game.observation(), [0, 0, 0])
    game.step(RISKY)
    game.step(RISKY)
    game.step(SAFE)
    obs = game.observation()
    assert obs.dtype == np.float32 and obs.shape == (3,)
    np.testing.assert_allclose(obs, [0.2, 0.0, 0.1])
    assert game.to_play() == 0


def test_hidden_probability_is_redrawn_each_episode():
    game, _ = bandit()
    draws = set()
    for _ in range(5):
        game.reset()
        draws.add(game.success_probability)
    assert len(draws) == 5 and all(0 <= x <= 1 for x in draws)


@pytest.mark.parametrize("action", [2, -1, 0.5])
def test_bad_actions_raise(action):
    game, _ = bandit()
    with pytest.raises(IllegalActionError):
        game.step(action)


@pytest.mark.parametrize("options, field", [({"horizon": 0}, "horizon"),
                                            ({"safe_reward": 2.0}, "safe_reward"),
                                            ({"success_probability": 1.5}, "success_probability"),
                                            ({"colour": "red"}, "colour")])
def test_bad_game_options_name_the_option(options, field):
    with pytest.raises(ValueError, match=field):
        bandit(**options)


def _success_probability(successes, failures):
    """P(next risky pull pays | history) = E[X^(s+1) (1-X)^f] / E[X^s (1-X)^f] under U(0, 1)."""
    def beta(a, b):
        return Fraction(factorial(a - 1) * factorial(b - 1), factorial(a + b - 1))
    return beta(successes + 2, failures + 1) / beta(successes + 1, failures + 1)


def _brute_force_value(horizon, safe_reward, history=()):
    """Expectimax over every full history of (arm, outcome), with exact fractions."""
    if len(history) == horizon:
        return Fraction(0)
    safe = safe_reward + _brute_force_value(horizon, safe_reward, history + ((SAFE, 0),))
    successes = sum(1 for arm, won in history if arm == RISKY and won)
    failures = sum(1 for arm, won in history if arm == RISKY and not won)
    p = _success_probability(successes, failures)
    risky = (p * (1 + _brute_force_value(horizon, safe_reward, history + ((RISKY, 1),)))
             + (1 - p) * _brute_force_value(horizon, safe_reward, history + ((RISKY, 0),)))
    return max(safe, risky)


@pytest.mark.parametrize("horizon", [1, 2, 3, 4, 6])
@pytest.mark.parametrize("safe_reward", [Fraction(1, 2), Fraction(3, 5)])
def test_dynamic_programming_value_matches_brute_force(horizon, safe_reward):
    exact = _brute_force_value(horizon, safe_reward)
    computed = bayes_optimal_value(horizon, float(safe_reward))
    assert computed == pytest.approx(float(exact), abs=1e-12)


def test_bayes_value_for_the_classic_setting():
    assert bayes_optimal_value(20, 0.5) == pytest.approx(11.912, abs=1e-3)
    assert reference_value(make_config()) == pytest.approx(11.912, abs=1e-3)
    assert bayes_optimal_value(20, 0.5) > 10.0  # better than always pulling the safe arm


def _mean_return(config, episodes, seed):
    rng = np.random.default_rng(seed)
    game = make_game(config, rng)
    player = BayesOptimalPlayer(config, rng)
    returns = []
    for _ in range(episodes):
        game.reset()
        total = 0.0
        while not game.terminal():
            total += game.step(player.select_action(game))[0]
        returns.append(total)
    return np.mean(returns), np.std(returns) / np.sqrt(episodes)


def test_bayes_player_achieves_the_dp_value_in_play():
    mean, stderr = _mean_return(make_config(), 4000, seed=1)
    assert abs(mean - bayes_optimal_value()) < 4 * stderr


@pytest.mark.parametrize("x", [0.2, 0.8])
def test_reference_value_with_fixed_probability_matches_play(x):
    config = make_config()
    config = config.replace(game_options={**config.game_options, "success_probability": x})
    mean, stderr = _mean_return(config, 3000, seed=2)
    assert abs(mean - reference_value(config)) < 4 * stderr + 1e-9


def test_bandit_config_is_a_valid_config():
    assert isinstance(make_config(), Config) and make_config().network == "mlp"


def test_exact_return_of_a_policy_matches_the_bayes_table():
    """benchmarks/bandit_exact.py: the Bayes-optimal policy's exact return is the table's value,
    always safe returns horizon * safe_reward, and for any policy the decisions' costs add up to
    its gap to the Bayes-optimal return (each decision's Q loss, weighted by its reach)."""
    options = dict(DEFAULT_OPTIONS)
    reachable = positions(options["horizon"])
    bayes = bayes_policy(options)
    assert expected_return(bayes, options) == pytest.approx(bayes_optimal_value(), abs=1e-9)
    assert expected_return(dict.fromkeys(reachable, SAFE), options) == pytest.approx(10.0)
    arbitrary = dict(zip(reachable, np.random.default_rng(0).integers(0, 2, len(reachable))))
    gap = bayes_optimal_value() - expected_return(arbitrary, options)
    assert gap > 0.5
    assert sum(cost for cost, _, _ in costliest_decisions(arbitrary, options)) == pytest.approx(gap)
    costs = costliest_decisions(arbitrary, options)
    assert sum(cost_by_direction(arbitrary, costs)) == pytest.approx(gap)
    fixed = {**options, "success_probability": 0.9}
    assert expected_return(dict.fromkeys(reachable, RISKY), fixed) == pytest.approx(18.0)


def test_stored_target_means_split_the_window_by_age():
    """benchmarks/bandit_exact.py --values: each position's mean value target over the filled
    rows of a replay buffer, and over the newer half by running id (not by row: the buffer is a
    ring, so its newest rows can sit before its oldest)."""
    horizon = 20
    counts = np.array([[0, 1, 0], [0, 1, 0], [0, 0, 0], [0, 1, 0], [0, 2, 0], [0, 0, 0]])
    observations = counts.astype(np.float32) / np.float32(horizon)
    values = np.array([[9.0], [7.0], [11.0], [8.0], [5.0], [99.0]], np.float32)
    position_ids = np.array([5, 1, 4, 2, 3, -1])  # row 5 empty; ids 3, 4, 5 are the newer half
    means = stored_target_means(observations, values, position_ids, horizon)
    assert set(means) == {(0, 1, 0), (0, 0, 0), (0, 2, 0)}
    assert means[(0, 1, 0)] == pytest.approx((8.0, 3, 9.0, 1))
    assert means[(0, 0, 0)] == pytest.approx((11.0, 1, 11.0, 1))
    assert means[(0, 2, 0)] == pytest.approx((5.0, 1, 5.0, 1))
    older_only = stored_target_means(observations[[1, 3]], values[[1, 3]], np.array([1, 0]),
                                     horizon)
    assert older_only[(0, 1, 0)][:2] == pytest.approx((7.5, 2))


def test_planning_on_the_posterior_means_is_the_bayes_policy():
    """benchmarks/bandit_exact.py --plans: backward induction on rewards that are the posterior
    means plays exactly as the Bayes player (and reaches its value); on a risky arm that pays
    less than the safe one everywhere it plays safe, and on a tie too."""
    options = dict(DEFAULT_OPTIONS)
    reachable = positions(options["horizon"])
    posterior = {(s, f, k): (0.5, (s + 1) / (s + f + 2)) for s, f, k in reachable}
    planned = planned_policy(posterior, options)
    assert planned == bayes_policy(options)
    assert expected_return(planned, options) == pytest.approx(bayes_optimal_value(), abs=1e-9)
    for rate in (0.4, 0.5):
        constant = planned_policy(dict.fromkeys(reachable, (0.5, rate)), options)
        assert set(constant.values()) == {SAFE}
    assert set(planned_policy(dict.fromkeys(reachable, (0.5, 0.6)), options).values()) == {RISKY}


def test_observed_rewards_pool_the_risky_pulls_by_successes_and_failures():
    """--plans' data estimate: the risky arm's rate per (successes, failures) over every stored
    risky pull there, whatever the safe pulls (or per position, when asked), with one success and
    one failure added; safe pulls and empty rows count for nothing."""
    options = dict(DEFAULT_OPTIONS)
    counts = np.array([[0, 1, 0], [0, 1, 3], [0, 1, 2], [1, 0, 0], [0, 1, 0], [1, 0, 5]])
    observations = counts.astype(np.float32) / np.float32(options["horizon"])
    actions = np.array([RISKY, RISKY, SAFE, RISKY, RISKY, RISKY])
    rewards = np.array([[1.0], [0.0], [0.5], [1.0], [1.0], [0.0]], np.float32)
    position_ids = np.array([0, 1, 2, 3, -1, 4])  # row 4 is empty
    observed = observed_rewards(observations, actions, rewards, position_ids, options)
    assert set(observed) == set(positions(options["horizon"]))
    for safe_pulls in (0, 2, 7):
        assert observed[(0, 1, safe_pulls)] == pytest.approx((0.5, 2 / 4))  # 1 of 2 paid
        assert observed[(1, 0, safe_pulls)] == pytest.approx((0.5, 2 / 4))  # 1 of 2 paid
    assert observed[(0, 0, 0)] == pytest.approx((0.5, 0.5))  # no pull stored
    assert observed[(2, 3, 1)] == pytest.approx((0.5, 0.5))
    apart = observed_rewards(observations, actions, rewards, position_ids, options,
                             pool_safe_pulls=False)
    assert apart[(0, 1, 0)] == pytest.approx((0.5, 2 / 3))  # 1 of 1 paid (row 4 is empty)
    assert apart[(0, 1, 3)] == pytest.approx((0.5, 1 / 3))  # 0 of 1
    assert apart[(0, 1, 2)] == pytest.approx((0.5, 0.5))  # a safe pull only
    assert apart[(1, 0, 5)] == pytest.approx((0.5, 1 / 3))


def test_a_fitted_chance_head_learns_the_posterior_from_pulls():
    """--plans' chance head: fitted to the outcomes of risky pulls by a player that pulls the
    risky arm four times in five (the hidden chance drawn from the prior each episode), it
    predicts the posterior mean where the pulls are many, and planning on it comes near the Bayes
    return; it sees the real encodings only, not the counts' meaning."""
    options = dict(DEFAULT_OPTIONS)
    rng = np.random.default_rng(0)
    counts, actions, paid = [], [], []
    for _ in range(2000):
        chance, position = rng.random(), [0, 0, 0]
        for _ in range(options["horizon"]):
            counts.append(list(position))
            if rng.random() < 0.8:
                actions.append(RISKY)
                paid.append(float(rng.random() < chance))
                position[0 if paid[-1] else 1] += 1
            else:
                actions.append(SAFE)
                paid.append(options["safe_reward"])
                position[2] += 1
    observations = np.array(counts, np.float32) / np.float32(options["horizon"])
    fitted = fitted_chances(observations, np.array(actions), np.array(paid, np.float32)[:, None],
                            np.arange(len(actions)), options)
    for position in ((0, 0, 0), (1, 0, 0), (0, 1, 0), (1, 1, 1), (2, 1, 0)):
        posterior = (position[0] + 1) / (position[0] + position[1] + 2)
        assert fitted[position][1] == pytest.approx(posterior, abs=0.07)  # seeds 0-2: <= 0.047
        assert fitted[position][0] == options["safe_reward"]
    planned = expected_return(planned_policy(fitted, options), options)
    assert planned > bayes_optimal_value() - 0.08  # seeds 0-2: 11.883-11.912; always safe 10


def test_print_values_reads_a_real_run(tmp_path, capsys):
    """`--values` on a run that trained: each row shows the network's value of the position's
    real encoding, the replay's rows there and the Bayes value; the first position's rows are
    every stored game's first move."""
    config = make_config().replace(
        hidden_size=16, jit_compile=False, num_simulations=4, batch_size=16, num_envs=4,
        games_per_iteration=4, num_games=8, num_steps=4, checkpoint_interval=4,
        num_eval_games=0, replay_capacity=1000)
    SynchronousRun(load_game("onearmbandit"), config, tmp_path, progress_bars=False,
                   log=lambda _: None).run()
    options = dict(DEFAULT_OPTIONS)
    agent = load_agent(tmp_path)
    checkpoint = load_checkpoint(tmp_path, AGENT)
    replay = checkpoint.replay_arrays()
    print_values(checkpoint.path.name, replay, agent, [(0, 0, 0)], options)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("  values (step-000004)")
    rows = {line.split("(")[0].strip(): line.split(":")[1].split("/") for line in lines[2:]}
    assert set(rows) == {"here", "safe pull", "risky pays", "risky fails"}
    for label, counts in (("here", (0, 0, 0)), ("risky fails", (0, 1, 0))):
        observation = np.array([counts], np.float32) / 20  # the game's encoding, by hand
        network = float(rows[label][0])
        assert network == pytest.approx(
            float(agent.model.initial_inference(observation).value[0, 0]), abs=0.006)
    assert "(8)" in rows["here"][1]  # 8 games stored, each starting at (0, 0, 0)
    assert float(rows["here"][3]) == pytest.approx(bayes_optimal_value(), abs=0.006)
    table = _bayes_table(20, 0.5)
    assert float(rows["risky fails"][3]) == pytest.approx(table[1, 0, 1].max(), abs=0.006)

    predicted = predicted_rewards(agent, options)
    hand = agent.model.initial_inference(np.array([[0, 1, 2]], np.float32) / 20).hidden
    for arm in (SAFE, RISKY):
        reward = agent.model.recurrent_inference(hand, np.array([arm], np.int32)).reward[0, 0]
        assert predicted[(0, 1, 2)][arm] == pytest.approx(float(reward), abs=1e-5)
    print_plans(replay, agent, options)
    plans = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in plans] == [
        "  planned on the replay's observed rates", "  planned on the same rates, each position "
        "apart", "  planned on a chance head fitted to the replay's pulls",
        "  planned on the network's reward head"]
    data = observed_rewards(replay["observations"], replay["actions"], replay["rewards"],
                            replay["position_id"], options)
    assert float(plans[0].split()[-1]) == pytest.approx(
        expected_return(planned_policy(data, options), options), abs=1e-4)


def test_cost_by_direction_names_which_way_a_policy_errs():
    """Safe after a first failure (the Bayes player pulls the risky arm once more there) costs
    only caution; risky after two failures (the Bayes player settles for safe) costs only
    boldness; both splits are exact."""
    options = dict(DEFAULT_OPTIONS)
    bayes = bayes_policy(options)
    for counts, arm, cautious_expected in (((0, 1), SAFE, True), ((0, 2), RISKY, False)):
        policy = {**bayes, **{p: arm for p in bayes if p[:2] == counts}}
        gap = bayes_optimal_value() - expected_return(policy, options)
        cautious, bold = cost_by_direction(policy, costliest_decisions(policy, options))
        assert gap > 0.01
        assert (cautious, bold) == pytest.approx((gap, 0.0) if cautious_expected else (0.0, gap))
