"""MuZero with multi-player rewards, a Numba batched tree search and batched TF inference.

The public face is small: the config, the game contract and game loading. Search kernels, inference
plumbing and self-play live in subpackages and are imported from there.
"""

from muzero.config import Config, ConfigError
from muzero.game import Game, GameError, GameOverError, IllegalActionError, Player, RandomPlayer
from muzero.plugins import GamePlugin, UnknownGameError, available_games, load_game

__all__ = [
    "Config",
    "ConfigError",
    "Game",
    "GameError",
    "GameOverError",
    "GamePlugin",
    "IllegalActionError",
    "Player",
    "RandomPlayer",
    "UnknownGameError",
    "available_games",
    "load_game",
]
