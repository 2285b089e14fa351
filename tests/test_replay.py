import dataclasses

import numpy as np
import pytest

from games.tictactoe import TicTacToe
from muzero.config import Config
from muzero.plugins import load_game
from muzero.records import GameRecord
from muzero.replay import ReplayBuffer
from muzero.symmetry import symmetries_from_plugin
from muzero.targets import value_targets


def record(rewards, root_values, to_play, actions=None, num_actions=3, policies=None,
           observation_size=2):
    rewards = np.array(rewards, np.float32).reshape(len(rewards), -1)
    length = len(rewards)
    actions = np.arange(length) % num_actions if actions is None else actions
    if policies is None:
        policies = np.eye(num_actions, dtype=np.float32)[(np.arange(length) + 1) % num_actions]
    observations = np.arange(length * observation_size, dtype=np.float32).reshape(length, -1)
    return GameRecord(observations, np.array(actions, np.int32), rewards,
                      np.array(to_play, np.int32),
                      np.array(root_values, np.float32).reshape(length, -1),
                      np.array(policies, np.float32), np.ones((length, num_actions), bool))


def random_records(rng, count, num_players, length_bound):
    """`count` games of random lengths in [1, length_bound) with random numbers."""
    games = []
    for _ in range(count):
        length = int(rng.integers(1, length_bound))
        games.append(record(rewards=rng.normal(size=(length, num_players)),
                            root_values=rng.normal(size=(length, num_players)),
                            to_play=rng.integers(num_players, size=length)))
    return games


def buffer(games, num_players, num_actions=3, rng=0, **changes):
    config = Config(game="test", augment_symmetries=False, **changes)
    replay = ReplayBuffer(config, (2,), num_actions, num_players, np.random.default_rng(rng))
    replay.add_games(games)
    return replay


# Two players, three moves; player 0 wins with the last move.
TWO_PLAYER = record(rewards=[[0, 0], [0, 0], [1, -1]],
                    root_values=[[0.1, -0.1], [0.2, -0.2], [0.3, -0.3]], to_play=[0, 1, 0])


def by_position(batch):
    """First sample of each position id."""
    found = {}
    for i, index in enumerate(batch.indices):
        found.setdefault(int(index), i)
    return found


def test_final_outcome_targets_for_two_players():
    replay = buffer([TWO_PLAYER], 2, num_unroll_steps=3, td_steps=10)
    batch = replay.sample(200)
    rows = by_position(batch)
    assert sorted(rows) == [0, 1, 2]
    i = rows[1]  # position 1: steps k = 0..3 are positions 1, 2, then two absorbing ones
    np.testing.assert_allclose(batch.observations[i], [2, 3])
    np.testing.assert_allclose(batch.target_values[i], [[1, -1], [1, -1], [0, 0], [0, 0]])
    np.testing.assert_allclose(batch.target_rewards[i], [[0, 0], [0, 0], [1, -1], [0, 0]])
    np.testing.assert_allclose(batch.policy_mask[i], [1, 1, 0, 0])
    np.testing.assert_allclose(batch.target_policies[i][:2], [[0, 0, 1], [1, 0, 0]])
    np.testing.assert_allclose(batch.target_policies[i][2:], np.full((2, 3), 1 / 3), rtol=1e-6)
    np.testing.assert_array_equal(batch.target_to_play[i][:2], [1, 0])  # k = 0 unused
    np.testing.assert_allclose(batch.to_play_mask[i], [0, 1, 0, 0])
    np.testing.assert_array_equal(batch.actions[i][:2], [1, 2])  # then random actions
    i = rows[2]  # the winning move: its reward is the target of step 1
    np.testing.assert_allclose(batch.target_values[i][:2], [[1, -1], [0, 0]])
    np.testing.assert_allclose(batch.target_rewards[i][1], [1, -1])
    np.testing.assert_allclose(batch.to_play_mask[i], [0, 0, 0, 0])  # terminal: nobody moves


def test_n_step_targets_bootstrap_from_root_values():
    # td_steps = 1, discount 0.9: z_t = r_t + 0.9 * root_value_{t+1}; the last one is r_2.
    targets = value_targets(TWO_PLAYER.rewards, TWO_PLAYER.root_values, 1, 0.9)
    np.testing.assert_allclose(targets, [[0.18, -0.18], [0.27, -0.27], [1, -1]], rtol=1e-6)
    # td_steps = 2: z_0 = r_0 + 0.9 r_1 + 0.81 root_value_2 = 0.243.
    targets = value_targets(TWO_PLAYER.rewards, TWO_PLAYER.root_values, 2, 0.9)
    np.testing.assert_allclose(targets, [[0.243, -0.243], [0.9, -0.9], [1, -1]], rtol=1e-6)


def test_single_player_targets_sum_rewards_to_the_end():
    game = record(rewards=[0.5, 1, 0, 1], root_values=[3, 2, 1.5, 1], to_play=[0, 0, 0, 0])
    np.testing.assert_allclose(value_targets(game.rewards, game.root_values, 20, 1.0)[:, 0],
                               [2.5, 2, 1, 1])
    # td 2, discount 1: z_0 = 0.5 + 1 + root_value_2 = 3.0; z_1 = 1 + 0 + 1 = 2; z_2 = 0 + 1.
    np.testing.assert_allclose(value_targets(game.rewards, game.root_values, 2, 1.0)[:, 0],
                               [3, 2, 1, 1])
    replay = buffer([game], 1, num_unroll_steps=2, td_steps=2)
    batch = replay.sample(100)
    i = by_position(batch)[2]
    np.testing.assert_allclose(batch.target_values[i, :, 0], [1, 1, 0])
    np.testing.assert_allclose(batch.target_rewards[i, :, 0], [0, 0, 1])
    np.testing.assert_array_equal(batch.target_to_play[i], [0, 0, 0])
    np.testing.assert_allclose(batch.to_play_mask[i], [0, 1, 0])


def reference_targets(game: GameRecord, t: int, K: int, td: int, discount: float):
    """The paper's make_target, one position and one step at a time; a game cut by a time limit
    bootstraps from its last search value where the n steps reach the cut, and knows nothing
    past it (NaN: masked)."""
    T = len(game)
    values, rewards = [], []
    unknown = np.full(game.rewards.shape[1], np.nan)
    for u in range(t, t + K + 1):
        if u < T:
            steps = min(td, T - 1 - u) if game.truncated and u + td >= T else td
            value = sum(discount ** j * game.rewards[u + j] for j in range(steps) if u + j < T)
            if u + steps < T:
                value = value + discount ** steps * game.root_values[u + steps]
        else:
            value = unknown if game.truncated else np.zeros(game.rewards.shape[1])
        values.append(value)
        if t < u <= T:
            rewards.append(game.rewards[u - 1])
        else:
            rewards.append(unknown if game.truncated and u > t else
                           np.zeros(game.rewards.shape[1]))
    return np.array(values), np.array(rewards)


@pytest.mark.parametrize("td,discount,cut", [(1, 0.9, False), (3, 0.97, False),
                                             (50, 1.0, False), (1, 0.9, True),
                                             (3, 0.97, True), (50, 0.99, True)])
def test_targets_match_the_reference_on_random_games(td, discount, cut):
    games = random_records(np.random.default_rng(td), 6, 3, 9)
    if cut:  # every other game cut by a time limit
        games = [dataclasses.replace(game, truncated=bool(number % 2))
                 for number, game in enumerate(games)]
    replay = buffer(games, 3, num_unroll_steps=4, td_steps=td, discount=discount, rng=td)
    batch = replay.sample(300)
    starts = np.cumsum([0] + [len(game) for game in games])
    for i, index in enumerate(batch.indices):
        g = int(np.searchsorted(starts, index, side="right")) - 1
        values, rewards = reference_targets(games[g], int(index - starts[g]), 4, td, discount)
        known_values, known_rewards = ~np.isnan(values[:, 0]), ~np.isnan(rewards[:, 0])
        np.testing.assert_array_equal(batch.value_mask[i], known_values)
        np.testing.assert_array_equal(batch.reward_mask[i][1:], known_rewards[1:])
        np.testing.assert_allclose(batch.target_values[i][known_values], values[known_values],
                                   rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(batch.target_rewards[i][known_rewards],
                                   rewards[known_rewards], rtol=1e-5, atol=1e-6)
    assert (batch.reward_mask[:, 0] == 0).all()
    assert not cut or (batch.value_mask == 0).any()  # the cut games' tails were drawn


def test_a_cut_game_bootstraps_from_its_last_search_value():
    """CartPole-like: reward 1 a move, cut after 3 moves; with td 10 every target reaches the
    cut, and the last search value (40) stands in for the last reward and all after it."""
    game = dataclasses.replace(record(rewards=[1, 1, 1], root_values=[42, 41, 40],
                                      to_play=[0, 0, 0]), truncated=True)
    targets = value_targets(game.rewards, game.root_values, 10, 0.5, truncated=np.array([True]))
    np.testing.assert_allclose(targets[:, 0], [1 + 0.5 + 0.25 * 40, 1 + 0.5 * 40, 40])
    whole = value_targets(game.rewards, game.root_values, 10, 0.5)  # not cut: 0 after the end
    np.testing.assert_allclose(whole[:, 0], [1.75, 1.5, 1])


def test_prioritized_frequencies_and_weights_match_their_formulas():
    # One game of 4 positions; priorities from |root value - target| = 0.1, 0.2, 0.4, 0.8.
    game = record(rewards=[0, 0, 0, 0], root_values=[0.1, 0.2, 0.4, 0.8], to_play=[0] * 4)
    alpha, beta = 0.7, 0.6
    replay = buffer([game], 1, td_steps=10, priority_alpha=alpha, priority_beta=beta)
    errors = np.array([0.1, 0.2, 0.4, 0.8])
    expected = errors ** alpha / (errors ** alpha).sum()
    np.testing.assert_allclose(replay.probabilities()[:4], expected, rtol=1e-9)
    draws = np.concatenate([replay.sample(500).indices for _ in range(40)])
    frequencies = np.bincount(draws, minlength=4) / len(draws)
    np.testing.assert_allclose(frequencies, expected, atol=0.01)
    batch = replay.sample(64)
    raw = (4 * expected[batch.indices]) ** -beta
    np.testing.assert_allclose(batch.weights, raw / raw.mean(), rtol=1e-5)


def test_uniform_sampling_has_unit_weights_and_equal_frequencies():
    game = record(rewards=[0, 0, 0, 0], root_values=[0.1, 0.2, 0.4, 0.8], to_play=[0] * 4)
    replay = buffer([game], 1, prioritized_replay=False)
    draws = np.concatenate([replay.sample(500).indices for _ in range(20)])
    np.testing.assert_allclose(np.bincount(draws) / len(draws), 0.25, atol=0.015)
    assert (replay.sample(10).weights == 1).all()


def test_update_priorities_changes_what_is_drawn_and_skips_evicted_positions():
    game = record(rewards=[0, 0], root_values=[0.5, 0.5], to_play=[0, 0])
    replay = buffer([game], 1, replay_capacity=4)
    replay.update_priorities(np.array([0, 1]), np.array([0.0, 1.0]))
    np.testing.assert_allclose(replay.probabilities()[:2], [1e-3 / 1.001, 1 / 1.001])
    replay.add_games([game, game])  # 6 positions in 4 rows: the first game is evicted
    assert replay.num_games == 2 and replay.num_positions == 4 and replay.total_games == 3
    before = replay.priorities.copy()
    replay.update_priorities(np.array([0, 1]), np.array([5.0, 5.0]))  # stale ids: ignored
    np.testing.assert_array_equal(replay.priorities, before)
    assert set(np.unique(replay.sample(100).indices)) == {2, 3, 4, 5}


def test_eviction_wraps_around_and_keeps_games_whole():
    games = [record(rewards=[0] * n, root_values=[0] * n, to_play=[0] * n) for n in (3, 2, 3)]
    replay = buffer(games, 1, replay_capacity=6, num_unroll_steps=2, prioritized_replay=False)
    assert list(replay.games) == [(3, 2), (5, 3)]  # the first game no longer fits
    batch = replay.sample(200)
    assert set(batch.indices) == {3, 4, 5, 6, 7}
    i = by_position(batch)[5]  # the game that wraps: rows 5, 0, 1
    np.testing.assert_allclose(batch.policy_mask[i], [1, 1, 1])
    np.testing.assert_allclose(batch.observations[i], games[2].observations[0])
    i = by_position(batch)[4]  # the last position of the middle game
    np.testing.assert_allclose(batch.policy_mask[i], [1, 0, 0])


def test_bad_game_records_are_rejected_and_nothing_is_stored():
    replay = buffer([], 2)
    bad = record(rewards=[[0, np.nan]], root_values=[[0, 0]], to_play=[0])
    with pytest.raises(ValueError, match="non-finite"):
        replay.add_games([bad])
    wrong = record(rewards=[[0, 0, 0]], root_values=[[0, 0, 0]], to_play=[0])
    with pytest.raises(ValueError, match="rewards has shape"):
        replay.add_games([wrong])
    illegal = record(rewards=[[0, 0]], root_values=[[0, 0]], to_play=[2])
    with pytest.raises(ValueError, match="to_play out of range"):
        replay.add_games([illegal])
    assert replay.num_games == 0 and replay.total_positions == 0
    with pytest.raises(ValueError, match="empty"):
        replay.sample(4)


def test_state_round_trip_continues_identically():
    games = [TWO_PLAYER, TWO_PLAYER]
    first = buffer(games, 2, rng=3)
    first.sample(5)
    arrays, meta = first.state()
    second = buffer([], 2, rng=99)
    second.restore({name: array.copy() for name, array in arrays.items()}, meta)
    a, b = first.sample(32), second.sample(32)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    with pytest.raises(ValueError, match="replay_capacity"):
        buffer([], 2, replay_capacity=7).restore(arrays, meta)


def test_tictactoe_symmetries_map_play_onto_play():
    plugin = load_game("tictactoe")
    config = plugin.make_config()
    symmetries = symmetries_from_plugin(plugin, config)
    assert len(symmetries) == 8
    moves = [0, 4, 5, 2]
    for symmetry in symmetries:
        action_map = np.argsort(symmetry.action_index)
        original, image = TicTacToe(), TicTacToe()
        for move in moves:
            original.step(move)
            image.step(int(action_map[move]))
            transformed = original.observation().reshape(-1)[symmetry.observation_index]
            np.testing.assert_array_equal(transformed.reshape(3, 3, 3), image.observation())
            legal = original.legal_actions()[symmetry.action_index]
            np.testing.assert_array_equal(legal, image.legal_actions())


def test_augmented_batches_stay_consistent():
    """Sampled observation, actions and policy move together: replaying the (transformed)
    actions from the (transformed) observation's board gives legal moves."""
    plugin = load_game("tictactoe")
    config = plugin.make_config().replace(num_unroll_steps=3)
    game = TicTacToe()
    observations, policies = [], []
    for move in (0, 4, 8, 1):
        observations.append(game.observation())
        policies.append(np.eye(9, dtype=np.float32)[move])
        game.step(move)
    recorded = GameRecord(np.stack(observations), np.array([0, 4, 8, 1], np.int32),
                          np.zeros((4, 2), np.float32), np.array([0, 1, 0, 1], np.int32),
                          np.zeros((4, 2), np.float32), np.stack(policies),
                          np.ones((4, 9), bool))
    replay = ReplayBuffer(config, (3, 3, 3), 9, 2, np.random.default_rng(0),
                          symmetries_from_plugin(plugin, config))
    replay.add_games([recorded])
    batch = replay.sample(64)
    assert len({batch.observations[i].tobytes() for i in range(64)}) > 4  # several images
    for i in range(64):
        board = batch.observations[i]
        t = int(batch.indices[i])
        for k in range(min(3, 4 - t)):
            action = batch.actions[i, k]
            assert batch.target_policies[i, k, action] == 1.0  # the policy played that move
            row, column = divmod(int(action), 3)
            if k == 0:
                assert board[row, column, 0] == 0 and board[row, column, 1] == 0


def test_adding_games_together_equals_adding_them_one_by_one():
    games = random_records(np.random.default_rng(5), 12, 2, 6)
    settings = dict(replay_capacity=13, td_steps=2, discount=0.9)  # evicts, wraps, chunks
    together = buffer(games, 2, **settings)
    one_by_one = buffer([], 2, **settings)
    for game in games:
        one_by_one.add_games([game])
    (arrays, meta), (expected, expected_meta) = together.state(), one_by_one.state()
    for name in expected:
        np.testing.assert_array_equal(arrays[name], expected[name], err_msg=name)
    assert meta["total_positions"] == expected_meta["total_positions"]
