import numpy as np
import pytest

from games.tictactoe import LINES, MinimaxPlayer, TicTacToe, make_config, minimax_value
from muzero.game import GameOverError, IllegalActionError, RandomPlayer


def play(moves):
    game = TicTacToe()
    rewards = [game.step(move) for move in moves]
    return game, rewards


def winning_sequence(line, winner):
    """Moves in which `winner` (0 = X, 1 = O) completes `line` on its third stone."""
    others = [cell for cell in range(9) if cell not in line]
    # The loser's stones go on cells that never make a line of their own before the win.
    loser = [others[0], others[1], others[-1]]
    if winner == 0:
        return [line[0], loser[0], line[1], loser[1], line[2]]
    # O wins: X needs a first move that does not help X win before O's third stone.
    return [loser[0], line[0], loser[1], line[1], loser[2], line[2]]


@pytest.mark.parametrize("line", LINES)
@pytest.mark.parametrize("winner", [0, 1])
def test_every_line_wins(line, winner):
    moves = winning_sequence(line, winner)
    game, rewards = play(moves)
    assert game.terminal()
    expected = np.array([1.0, -1.0]) if winner == 0 else np.array([-1.0, 1.0])
    np.testing.assert_array_equal(rewards[-1], expected)
    assert all(not r.any() for r in rewards[:-1])
    assert not game.legal_actions().any()
    assert "wins" in game.render()


def test_draw_gives_zero_rewards_and_ends():
    game, rewards = play([0, 1, 2, 4, 3, 5, 7, 6, 8])
    assert game.terminal()
    assert all(r.tolist() == [0.0, 0.0] for r in rewards)
    assert "draw" in game.render()


def test_players_alternate_and_observation_planes():
    game = TicTacToe()
    assert game.to_play() == 0
    game.step(4)
    assert game.to_play() == 1
    game.step(0)
    obs = game.observation()
    assert obs.dtype == np.float32 and obs.shape == (3, 3, 3)
    assert obs[1, 1, 0] == 1 and obs[0, 0, 1] == 1 and obs[:, :, :2].sum() == 2
    assert (obs[:, :, 2] == 0).all()  # X (player 0) to move again


@pytest.mark.parametrize("action", [-1, 9, 2.0, "3", True, None])
def test_out_of_range_or_wrongly_typed_actions_raise(action):
    with pytest.raises(IllegalActionError, match="action"):
        TicTacToe().step(action)


def test_occupied_cell_is_illegal_and_state_unchanged():
    game, _ = play([4])
    before = game.board
    with pytest.raises(IllegalActionError, match="not legal"):
        game.step(4)
    assert game.board == before and game.to_play() == 1


def test_stepping_a_finished_game_raises():
    game, _ = play(winning_sequence(LINES[0], 0))
    with pytest.raises(GameOverError):
        game.step(8)


def test_empty_board_is_a_draw_under_perfect_play():
    assert minimax_value((0,) * 9) == 0


def test_minimax_takes_a_win_and_blocks_a_loss():
    # X: 0, 1 ; O: 3, 4 -> X to play wins at 2.
    game, _ = play([0, 3, 1, 4])
    assert MinimaxPlayer(make_config(), np.random.default_rng(0)).select_action(game) == 2
    # X: 0, 1 ; O: 4 -> O must block at 2.
    game, _ = play([0, 4, 1])
    assert MinimaxPlayer(make_config(), np.random.default_rng(0)).select_action(game) == 2


@pytest.mark.parametrize("minimax_seat", [0, 1])
def test_minimax_never_loses_to_random(minimax_seat):
    rng = np.random.default_rng(minimax_seat)
    players = {minimax_seat: MinimaxPlayer(make_config(), rng), 1 - minimax_seat: RandomPlayer(rng)}
    results = []
    for _ in range(150):
        game = TicTacToe()
        total = np.zeros(2)
        while not game.terminal():
            total += game.step(players[game.to_play()].select_action(game))
        results.append(total[minimax_seat])
    assert min(results) >= 0
    assert np.mean(results) > 0.5  # it also wins most games against random


def test_minimax_against_itself_always_draws():
    rng = np.random.default_rng(3)
    player = MinimaxPlayer(make_config(), rng)
    for _ in range(20):
        game = TicTacToe()
        total = np.zeros(2)
        while not game.terminal():
            total += game.step(player.select_action(game))
        assert total.tolist() == [0.0, 0.0]
