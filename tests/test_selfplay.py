import time

import numpy as np
import pytest

from games.onearmbandit import OneArmBandit
from games.tictactoe import TicTacToe, winner
from muzero.batching.inference import BatchedInference
from muzero.batching.selfplay import VectorisedSelfPlay, play_games
from muzero.network import network_for_game
from muzero.plugins import load_game
from muzero.records import GameRecord

SMALL = dict(channels=8, num_blocks=1, hidden_size=16, mlp_layers=1, jit_compile=False,
             num_simulations=8)


@pytest.fixture(scope="module")
def tictactoe():
    plugin = load_game("tictactoe")
    config = plugin.make_config().replace(**SMALL)
    return plugin, config, BatchedInference(network_for_game(plugin, config), jit_compile=False)


@pytest.fixture(scope="module")
def bandit():
    plugin = load_game("onearmbandit")
    config = plugin.make_config().replace(**SMALL)
    return plugin, config, BatchedInference(network_for_game(plugin, config), jit_compile=False)


def check_consistent(game: GameRecord, num_actions: int, num_players: int):
    length = len(game)
    assert game.observations.shape[0] == length and game.observations.dtype == np.float32
    assert game.rewards.shape == game.root_values.shape == (length, num_players)
    assert game.policies.shape == (length, num_actions)
    assert game.to_play.shape == game.actions.shape == (length,)
    np.testing.assert_allclose(game.policies.sum(axis=1), 1.0, rtol=1e-5)


def test_tictactoe_games_are_legal_complete_and_consistent(tictactoe):
    plugin, config, inference = tictactoe
    actor = VectorisedSelfPlay(plugin, config, inference, 6, np.random.default_rng(0))
    games = actor.play(12)
    assert len(games) == 12
    for record in games:
        check_consistent(record, 9, 2)
        replay = TicTacToe()
        for t, action in enumerate(record.actions):
            np.testing.assert_array_equal(record.observations[t], replay.observation())
            assert record.to_play[t] == replay.to_play() == t % 2
            legal = replay.legal_actions()
            np.testing.assert_array_equal(record.legal[t], legal)
            assert (record.policies[t][~legal] == 0).all()  # search never visits illegal moves
            np.testing.assert_array_equal(record.rewards[t], replay.step(int(action)))
        assert replay.terminal() and 5 <= len(record) <= 9
        won = winner(replay.board)  # the whole game's rewards: the outcome on the final board
        expected = np.zeros(2) if won is None else np.where(np.arange(2) == won, 1.0, -1.0)
        np.testing.assert_array_equal(record.total_rewards(), expected)


def test_bandit_games_last_the_horizon(bandit):
    plugin, config, inference = bandit
    actor = VectorisedSelfPlay(plugin, config, inference, 4, np.random.default_rng(0))
    games = actor.play(5)
    for record in games:
        check_consistent(record, 2, 1)
        assert len(record) == 20 and (record.to_play == 0).all()
        safe = record.actions == 0
        assert (record.rewards[safe, 0] == 0.5).all()
        assert np.isin(record.rewards[~safe, 0], [0.0, 1.0]).all()
        counts = record.observations[-1] * 20  # history before the last move
        assert counts.sum() == 19


def test_finished_slots_restart_at_once(tictactoe):
    plugin, config, inference = tictactoe
    actor = VectorisedSelfPlay(plugin, config, inference, 3, np.random.default_rng(1))
    finished = []
    for _ in range(30):
        finished.extend(record for _, record in actor.step())
        assert not any(game.terminal() for game in actor.games)  # every slot is always in play
    assert actor.positions == 90
    assert sum(len(game) for game in finished) <= 90 and len(finished) >= 9


def test_play_ends_exactly_the_games_asked_for_and_rests_idle_slots(tictactoe):
    plugin, config, inference = tictactoe
    actor = VectorisedSelfPlay(plugin, config, inference, 8, np.random.default_rng(1))
    ended = []
    games = actor.play(11, progress=ended.append)
    assert len(games) == 11 and sum(ended) == 11
    assert actor.positions == sum(len(game) for game in games)  # no move in a discarded game
    assert len(actor.play(3)) == 3  # fewer games than slots


def test_report_seconds_match_the_wall_clock(tictactoe):
    plugin, config, inference = tictactoe
    for actors in (1, 2):
        start = time.perf_counter()
        report = play_games(plugin, config.replace(num_envs=4, num_actors=actors), inference, 6)
        wall = time.perf_counter() - start
        assert 0.0 < report.seconds <= wall  # measured inside the call (no lower bound: timing)
        assert report.positions_per_second == pytest.approx(report.positions / report.seconds)


def test_selfplay_is_reproducible_under_a_seed(tictactoe):
    plugin, config, inference = tictactoe

    def games(seed):
        return VectorisedSelfPlay(plugin, config, inference, 4,
                                  np.random.default_rng(seed)).play(6)

    first, again, other = games(3), games(3), games(4)
    assert [g.actions.tolist() for g in first] == [g.actions.tolist() for g in again]
    assert [g.actions.tolist() for g in first] != [g.actions.tolist() for g in other]


def test_play_games_depends_on_the_seed_not_on_threads(tictactoe):
    plugin, config, inference = tictactoe
    config = config.replace(num_envs=6, num_actors=2)
    first = play_games(plugin, config, inference, 8, seed=(5, 1))
    again = play_games(plugin, config, inference, 8, seed=(5, 1))
    other = play_games(plugin, config, inference, 8, seed=(5, 2))
    assert [g.actions.tolist() for g in first.games] == [g.actions.tolist() for g in again.games]
    assert [g.actions.tolist() for g in first.games] != [g.actions.tolist() for g in other.games]


def test_actor_threads_share_one_queue(tictactoe):
    plugin, config, inference = tictactoe
    report = play_games(plugin, config.replace(num_envs=6, num_actors=3), inference, 9)
    assert len(report.games) == 9 and report.positions >= 9 * 5
    assert {"network", "search", "hidden", "environment", "other"} <= set(report.phase_seconds)
    for record in report.games:
        check_consistent(record, 9, 2)


def test_bad_actor_counts_are_rejected(tictactoe):
    plugin, config, inference = tictactoe
    with pytest.raises(ValueError, match="num_actors must be in"):
        play_games(plugin, config.replace(num_envs=2, num_actors=3), inference, 1)


def test_game_record_rejects_inconsistent_lengths():
    with pytest.raises(ValueError, match="GameRecord.rewards has 2 rows, actions has 3"):
        GameRecord(np.zeros((3, 3)), np.zeros(3, np.int32), np.zeros((2, 1)),
                   np.zeros(3, np.int32), np.zeros((3, 1)), np.zeros((3, 2)),
                   np.ones((3, 2), bool))


def test_bandit_observations_follow_the_history(bandit):
    plugin, config, inference = bandit
    record = VectorisedSelfPlay(plugin, config, inference, 1, np.random.default_rng(2)).play(1)[0]
    successes = failures = safe = 0
    for t, action in enumerate(record.actions):
        np.testing.assert_allclose(record.observations[t] * 20, [successes, failures, safe])
        if action == 0:
            safe += 1
        elif record.rewards[t, 0] == 1.0:
            successes += 1
        else:
            failures += 1
    assert len(record) == OneArmBandit(np.random.default_rng(0)).horizon


@pytest.mark.parametrize("probability", [0.0, 0.5, 1.0])
def test_random_moves_replace_the_searchs_choice_at_their_rate(tictactoe, probability):
    plugin, config, inference = tictactoe
    config = config.replace(freezing_moves=0, random_move_probability=probability)
    games = VectorisedSelfPlay(plugin, config, inference, 8, np.random.default_rng(0)).play(24)
    most_visited = [record.policies[t, action] == record.policies[t].max()
                    for record in games for t, action in enumerate(record.actions)]
    if probability == 0.0:
        assert all(most_visited)
    elif probability == 1.0:  # uniform over the legal moves: the most visited one about a fifth
        assert 0.1 < np.mean(most_visited) < 0.45
    else:  # half the moves the search's, half uniform: about 0.5 + 0.5 / 5
        assert 0.45 < np.mean(most_visited) < 0.8
    evaluation = VectorisedSelfPlay(plugin, config, inference, 8, np.random.default_rng(0),
                                    add_noise=False).play(8)
    assert all(record.policies[t, action] == record.policies[t].max()
               for record in evaluation for t, action in enumerate(record.actions))
