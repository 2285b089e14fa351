import numpy as np
import pytest
from search_models import TicTacToeOracle

from games.onearmbandit import bayes_optimal_value
from muzero.agent import Agent
from muzero.evaluation import evaluate, play_match, solo_returns
from muzero.plugins import load_game

TICTACTOE = load_game("tictactoe")
BANDIT = load_game("onearmbandit")


def oracle_agent(simulations: int = 40) -> Agent:
    config = TICTACTOE.make_config().replace(num_simulations=simulations)
    oracle = TicTacToeOracle(perfect_values=True, legal_priors=True)
    return Agent(TICTACTOE, config, oracle, max_batch=16)


def test_a_perfect_agent_never_loses_and_beats_random_play():
    agent = oracle_agent()
    config = agent.config
    minimax = play_match(agent, TICTACTOE, config, "minimax", 20, seed=1)
    assert [seat.games for seat in minimax.seats] == [10, 10]
    assert minimax.losses == 0 and all(seat.wins == 0 for seat in minimax.seats)
    random = play_match(agent, TICTACTOE, config, "random", 40, seed=2)  # 40 games, 3 batches
    assert random.losses == 0
    assert random.seats[0].wins >= 18 and random.seats[1].wins >= 12
    assert "random: seat 0 W" in random.summary()


def test_self_play_evaluation_counts_each_seat_and_is_deterministic():
    agent = oracle_agent()
    result = play_match(agent, TICTACTOE, agent.config, "self", 6)
    assert [seat.draws for seat in result.seats] == [3, 3]  # perfect play draws
    first = evaluate(agent, TICTACTOE, agent.config, 8, seed=4)
    again = evaluate(agent, TICTACTOE, agent.config, 8, seed=4)
    assert first == again and set(first["matches"]) == {"minimax", "random"}


def test_unknown_opponent_is_named():
    agent = oracle_agent(4)
    with pytest.raises(ValueError, match="unknown opponent 'chess' for tictactoe; available: "
                                         "minimax, random, self"):
        play_match(agent, TICTACTOE, agent.config, "chess", 2)


def test_a_one_player_game_has_no_opponent_to_name():
    """`evaluate --opponent` on the bandit is an error, not a flag silently ignored."""
    with pytest.raises(ValueError, match="onearmbandit is a one-player game: it has no "
                                         "opponents .* bayes, random, safe beside it"):
        evaluate(None, BANDIT, BANDIT.make_config(), 2, opponents=["random"])


def test_bandit_baselines_match_their_exact_values():
    config = BANDIT.make_config()
    safe = solo_returns(None, BANDIT, config, 50, seed=0, player="safe")
    assert safe.mean == 10.0 and safe.stderr == 0.0
    bayes = solo_returns(None, BANDIT, config, 3000, seed=1, player="bayes")
    assert abs(bayes.mean - bayes_optimal_value()) < 4 * bayes.stderr
    assert bayes.reference == pytest.approx(11.9122, abs=1e-4)
    assert "reference 11.912" in bayes.summary()


def test_single_player_evaluation_reports_returns_with_baselines():
    from muzero.batching.inference import inference_for_game

    config = BANDIT.make_config().replace(num_simulations=4, hidden_size=8, mlp_layers=1,
                                          jit_compile=False)
    agent = Agent(BANDIT, config, inference_for_game(BANDIT, config), max_batch=8)
    result = evaluate(agent, BANDIT, config, 12, seed=0, baselines=True)["returns"]
    # reference: the same 12 episodes (same generator, moves applied in the same order), each
    # move found by a search of its own game alone instead of one batched search per round
    rng = np.random.default_rng(0)
    episodes = [BANDIT.make_game(config, rng) for _ in range(12)]
    returns = np.zeros(12)
    while live := [i for i, game in enumerate(episodes) if not game.terminal()]:
        actions = [agent.select_action(episodes[i]) for i in live]
        for i, action in zip(live, actions):
            returns[i] += episodes[i].step(action)[0]
    assert result["episodes"] == 12
    assert result["mean"] == pytest.approx(np.mean(returns))
    assert result["stderr"] == pytest.approx(np.std(returns, ddof=1) / np.sqrt(12))
    assert result["baselines"]["safe"] == 10.0 and set(result["baselines"]) == {
        "bayes", "random", "safe"}
