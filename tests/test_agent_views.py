"""The agent searches every symmetric view of a position and plays the move most visited over all
views (`agent_symmetries`), checked against searching each view as a board of its own."""

import numpy as np
import pytest
from search_models import RandomModel

from games.tictactoe import TicTacToe, symmetries
from muzero.agent import Agent
from muzero.plugins import load_game

TICTACTOE = load_game("tictactoe")
BANDIT = load_game("onearmbandit")


def random_positions(count: int, seed: int) -> list[tuple[TicTacToe, list[int]]]:
    """Positions with a move to make, from seeded random games, with the moves that led there."""
    rng = np.random.default_rng(seed)
    found = []
    while len(found) < count:
        game, moves = TicTacToe(), []
        while not game.terminal() and len(found) < count:
            found.append((_replay(moves), list(moves)))
            move = int(rng.choice(np.flatnonzero(game.legal_actions())))
            game.step(move)
            moves.append(move)
    return found


def _replay(moves: list[int]) -> TicTacToe:
    game = TicTacToe()
    for move in moves:
        game.step(move)
    return game


def test_the_agent_plays_the_move_most_visited_over_the_eight_views_of_the_board():
    config = TICTACTOE.make_config().replace(num_simulations=12)
    model = RandomModel(observation_size=27, num_actions=9, num_players=2, seed=3)
    every_view = Agent(TICTACTOE, config, model)
    one_view = Agent(TICTACTOE, config.replace(agent_symmetries=False), model)
    positions = random_positions(40, seed=5)
    found = every_view.search_games([game for game, _ in positions])
    cells = [sigma for _, sigma in symmetries(config)]  # view cell c: the board's sigma[c]
    for row, (game, moves) in enumerate(positions):
        shares, values = np.zeros(9), []
        for sigma in cells:
            inverse = np.argsort(sigma)  # the board's cell m is the view's cell inverse[m]
            view = _replay([int(inverse[move]) for move in moves])
            alone = one_view.search_games([view])
            shares[sigma] += alone.policy[0]  # the view's move a is the board's move sigma[a]
            values.append(alone.root_value[0])
        expected = int(np.argmax(np.where(game.legal_actions(), shares, -1.0)))
        assert found.actions[row] == expected, (moves, shares)
        np.testing.assert_allclose(found.policy[row], shares / len(cells), atol=1e-6)
        np.testing.assert_allclose(found.root_value[row], np.mean(values, axis=0), atol=1e-5)
    single = one_view.search_games([game for game, _ in positions]).actions
    assert (single != found.actions).sum() >= 5  # 25 of 40: the views do outvote the one search


def test_a_game_without_symmetries_is_searched_once():
    config = BANDIT.make_config().replace(num_simulations=8)
    model = RandomModel(observation_size=3, num_actions=2, num_players=1, seed=0)
    games = [BANDIT.make_game(config, np.random.default_rng(seed)) for seed in range(6)]
    for game, action in zip(games, [0, 1, 1, 0, 1, 0]):
        game.step(action)
    with_views = Agent(BANDIT, config, model).search_games(games)
    without = Agent(BANDIT, config.replace(agent_symmetries=False), model).search_games(games)
    for field in range(3):
        np.testing.assert_array_equal(with_views[field], without[field])


def test_a_game_of_another_kind_is_named_not_fed_to_the_network():
    """A bandit agent handed a tic-tac-toe board: the error says which game each is."""
    config = BANDIT.make_config().replace(num_simulations=4)
    agent = Agent(BANDIT, config, RandomModel(observation_size=3, num_actions=2, num_players=1,
                                              seed=0))
    bandit = BANDIT.make_game(config, np.random.default_rng(0))
    assert agent.select_action(bandit) in (0, 1)
    with pytest.raises(ValueError, match=r"this agent plays onearmbandit \(observations \(3,\), "
                                         r"2 moves, 1 player\(s\)\); got a TicTacToe with "
                                         r"observations \(3, 3, 3\), 9 moves, 2 player\(s\)"):
        agent.search_games([bandit, TicTacToe()])
