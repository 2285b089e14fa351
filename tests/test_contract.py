"""The game-contract check that runs before a run starts: every built-in game and adapter passes it,
and each kind of broken answer is named by its class and method."""

import sys
import types
from dataclasses import replace

import numpy as np
import pytest

from games.tictactoe import TicTacToe
from muzero.__main__ import main
from muzero.contract import GameContractError, check_game_contract
from muzero.plugins import load_game

TICTACTOE = load_game("tictactoe")


@pytest.mark.parametrize("name", ["tictactoe", "onearmbandit", "gym:CartPole-v1",
                                  "gym:FrozenLake-v1", "spiel:tic_tac_toe",
                                  "spiel:connect_four"])
def test_every_shipped_game_keeps_the_contract(name):
    plugin = load_game(name)
    check_game_contract(plugin, plugin.default_config()[0])


class WideObservation(TicTacToe):
    def observation(self):
        return np.zeros((3, 3, 4), np.float32)


class DoubleObservation(TicTacToe):
    def observation(self):
        return super().observation().astype(np.float64)


class ListOfMoves(TicTacToe):
    def legal_actions(self):
        return list(super().legal_actions())


class ThirdPlayer(TicTacToe):
    def to_play(self):
        return 2 if self.legal_actions().sum() < 8 else super().to_play()


class OneReward(TicTacToe):
    def _apply(self, action):
        return super()._apply(action)[:1]


class StuckBoard(TicTacToe):
    def legal_actions(self):
        return np.zeros(9, bool) if self.legal_actions_left() < 7 else super().legal_actions()

    def legal_actions_left(self):
        return int(super().legal_actions().sum())


class NoPlayers(TicTacToe):
    num_players = 0


@pytest.mark.parametrize("game, message", [
    (WideObservation, "WideObservation.observation() returned shape (3, 3, 4), dtype float32; "
                      "expected a float32 array of shape (3, 3, 3) (observation_shape)"),
    (DoubleObservation, "DoubleObservation.observation() returned shape (3, 3, 3), dtype "
                        "float64; expected a float32 array"),
    (ListOfMoves, "ListOfMoves.legal_actions() returned list; expected a bool array of shape "
                  "(9,) (num_actions)"),
    (ThirdPlayer, "ThirdPlayer.to_play() returned 2; expected a player number in [0, 2)"),
    (OneReward, ") returned rewards [0.0] (shape (1,)); expected 2 finite numbers, one per "
                "player"),
    (StuckBoard, "StuckBoard.legal_actions() allows no move, but terminal() says the game goes "
                 "on"),
    (NoPlayers, "NoPlayers.num_players is 0; expected an integer >= 1"),
])
def test_a_broken_answer_is_named_by_class_and_method(game, message):
    plugin = replace(TICTACTOE, make_game=lambda config, rng: game())
    with pytest.raises(GameContractError) as error:
        check_game_contract(plugin, TICTACTOE.make_config())
    assert message in str(error.value)


def test_a_run_of_a_broken_game_stops_before_anything_is_written(tmp_path, monkeypatch, capsys):
    """Through the command line: the error, exit status 2, and no run folder."""
    module = types.ModuleType("brokengame.board")
    module.make_config = lambda: TICTACTOE.make_config().replace(game="brokengame.board")
    module.make_game = lambda config, rng: WideObservation()
    package = types.ModuleType("brokengame")
    package.board = module
    monkeypatch.setitem(sys.modules, "brokengame", package)
    monkeypatch.setitem(sys.modules, "brokengame.board", module)
    assert main(["--game", "brokengame.board", "--synchronous", "--checkpoint-dir",
                 str(tmp_path)]) == 2
    assert "WideObservation.observation() returned shape (3, 3, 4)" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
