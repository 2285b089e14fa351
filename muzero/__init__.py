"""MuZero with multi-player rewards, a Numba batched tree search and batched TF inference.

The public face is small: the config, the game contract, game loading and trained agents. Search
kernels, inference plumbing and self-play live in subpackages and are imported from there.
`Agent` and `load_agent` load TensorFlow, so they are imported on first use, not with the package
(TensorFlow's import notices held back, as on the command line: muzero/tensorflow_import.py).
"""

from muzero.config import Config, ConfigError
from muzero.game import Game, GameError, GameOverError, IllegalActionError, Player, RandomPlayer
from muzero.plugins import GamePlugin, UnknownGameError, available_games, load_game

__all__ = [
    "Agent",
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
    "load_agent",
    "load_game",
]

_LAZY = {"Agent": "muzero.agent", "load_agent": "muzero.agent"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        from muzero.tensorflow_import import import_tensorflow

        import_tensorflow()
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'muzero' has no attribute {name!r}")
