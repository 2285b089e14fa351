"""Reanalyse: stored positions searched again get exactly the targets a direct search of the same
positions with the same weights gives, and the value targets of their games follow."""

import numpy as np
import pytest
from test_replay import buffer, record

from muzero.batching.inference import BatchedInference
from muzero.batching.selfplay import play_games
from muzero.loops import LocalWeights, Reanalyser
from muzero.network import network_for_game
from muzero.plugins import load_game
from muzero.replay import ReplayBuffer
from muzero.search.mcts import MCTS
from muzero.search.reference import ReferenceTree
from muzero.search.tree import SearchSettings
from muzero.targets import value_targets

SMALL = dict(hidden_size=16, mlp_layers=1, jit_compile=False, num_simulations=8,
             inference_batch_size=16, td_steps=2, replay_capacity=500, reanalyse_ratio=0.5)


@pytest.fixture(scope="module")
def played():
    """Twelve tic-tac-toe games in a buffer, and newer weights (the old ones, moved)."""
    plugin = load_game("tictactoe")
    config = plugin.make_config().replace(**SMALL)
    network = network_for_game(plugin, config)
    report = play_games(plugin, config, BatchedInference(network, jit_compile=False), 12,
                        num_envs=6)
    rng = np.random.default_rng(3)
    newer = [w + rng.normal(scale=0.3, size=w.shape).astype(w.dtype)
             for w in network.get_weights()]
    return plugin, config, report.games, newer


def filled_buffer(config, games) -> ReplayBuffer:
    replay = ReplayBuffer(config, (3, 3, 3), 9, 2, np.random.default_rng(0))
    replay.add_games(games)
    return replay


def test_reanalysed_targets_equal_a_direct_reference_search(played):
    plugin, config, games, newer = played
    replay = filled_buffer(config, games)
    before = {name: getattr(replay, name).copy() for name in ("policies", "root_values",
                                                               "values")}
    weights = LocalWeights()
    weights.publish(newer, step=7)
    reanalyser = Reanalyser(plugin, config, BatchedInference(network_for_game(plugin, config),
                                                             jit_compile=False))
    total = replay.total_positions
    refreshed = reanalyser.round(replay, weights, total)
    # whole games, oldest first, until half the positions played
    lengths = [len(game) for game in games]
    whole = int(np.searchsorted(np.cumsum(lengths), total // 2)) + 1
    assert refreshed == reanalyser.reanalysed == sum(lengths[:whole]) == replay.reanalyse_from
    ids = np.arange(refreshed)

    # the plain-Python search, in the same batches, with the same root noise (self-play's)
    network = network_for_game(plugin, config)
    network.set_weights(newer)
    model = BatchedInference(network, jit_compile=False)
    batch = config.inference_batch_size
    direct = MCTS(ReferenceTree(batch, 9, 2, SearchSettings.from_config(config)),
                  np.random.default_rng([config.seed, 3]))
    results = [direct.run(model, replay.observations[rows], replay.legal[rows],
                          replay.to_play[rows], replay.position[rows])
               for rows in np.array_split(ids, range(batch, refreshed, batch))]
    policies = np.concatenate([result.policy for result in results])
    root_values = np.concatenate([result.root_value for result in results])
    np.testing.assert_allclose(replay.policies[ids], policies, atol=1e-5)
    np.testing.assert_allclose(replay.root_values[ids], root_values, atol=1e-5)
    assert not np.allclose(before["policies"][ids], policies)  # the targets did change
    expected = value_targets(replay.rewards[ids], root_values, config.td_steps,
                             config.discount, np.array(lengths[:whole]))
    np.testing.assert_allclose(replay.values[ids], expected, atol=1e-5)
    rest = np.arange(refreshed, total)  # games not reanalysed keep self-play's targets
    for name, array in before.items():
        np.testing.assert_array_equal(getattr(replay, name)[rest], array[rest])

    assert reanalyser.round(replay, weights, total) == 0  # caught up: nothing to do
    assert reanalyser.round(replay, weights, total + 2 * lengths[whole]) >= lengths[whole]
    assert replay.reanalyse_from > refreshed  # went on from where it stopped


def test_games_come_whole_oldest_targets_first_and_wrap_around():
    games = [record(rewards=[0] * n, root_values=[0] * n, to_play=[0] * n) for n in (3, 2, 3)]
    replay = buffer(games, 1)
    assert replay.positions_to_reanalyse(4).position_ids.tolist() == [0, 1, 2, 3, 4]
    assert replay.positions_to_reanalyse(1).position_ids.tolist() == [5, 6, 7]
    assert replay.positions_to_reanalyse(1).position_ids.tolist() == [0, 1, 2]  # wrapped
    assert replay.positions_to_reanalyse(100).position_ids.tolist() == [3, 4, 5, 6, 7, 0, 1, 2]
    stored = replay.positions_to_reanalyse(2)
    np.testing.assert_array_equal(stored.position_ids, [3, 4])
    np.testing.assert_array_equal(stored.move_number, [0, 1])
    np.testing.assert_array_equal(stored.observations, replay.observations[3:5])

    small = buffer(games, 1, replay_capacity=5)  # the first game was evicted
    assert small.positions_to_reanalyse(1).position_ids.tolist() == [3, 4]


def test_refreshed_values_recompute_the_n_step_targets_of_the_whole_game():
    game = record(rewards=[0.5, 1, 0, 1], root_values=[3, 2, 1.5, 1], to_play=[0] * 4)
    replay = buffer([game], 1, td_steps=2, discount=0.9)
    policy = np.eye(3, dtype=np.float32)[[2]]
    assert replay.refresh_targets(np.array([2]), policy, np.array([[10.0]])) == 1
    np.testing.assert_array_equal(replay.policies[2], policy[0])
    # only position 0 bootstraps from position 2: 0.5 + 0.9 * 1 + 0.81 * 10
    np.testing.assert_allclose(replay.values[:4, 0], [0.5 + 0.9 + 8.1, 1 + 0 + 0.81 * 1,
                                                      0 + 0.9 * 1, 1], rtol=1e-6)


def test_bad_refreshes_are_refused_and_change_nothing():
    legal = np.ones((2, 3), bool)
    legal[1, 2] = False
    game = record(rewards=[1e38, 1], root_values=[0, 0], to_play=[0, 0], actions=[0, 1])
    game = type(game)(**{**game.__dict__, "legal": legal})
    replay = buffer([game], 1, td_steps=1)  # position 0 bootstraps from position 1
    saved = {name: array.copy() for name, array in replay.state()[0].items()}
    ids, uniform, values = np.array([0, 1]), np.full((2, 3), 1 / 3, np.float32), np.zeros((2, 1))
    for arguments, message in [
        ((ids, uniform[:, :2], values), "expected position ids"),
        ((ids, uniform, np.full((2, 1), np.nan)), "non-finite"),
        ((ids, uniform, values), "legal moves"),  # position 1 forbids move 2
        ((ids, uniform * 2, values), "distribution"),
        ((ids, np.zeros((2, 3)), np.full((2, 1), 3e38)), "distribution"),
    ]:
        with pytest.raises(ValueError, match=message):
            replay.refresh_targets(*arguments)
    with pytest.raises(ValueError, match="overflow"):
        replay.refresh_targets(ids, np.eye(3, dtype=np.float32)[[0, 1]],
                               np.array([[0.0], [3.4e38]]))  # 1e38 + 3.4e38: inf
    for name, array in replay.state()[0].items():
        np.testing.assert_array_equal(array, saved[name])
    evicted = np.array([7, 8])  # ids never stored (or long evicted): skipped
    assert replay.refresh_targets(evicted, uniform, values) == 0
