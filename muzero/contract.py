"""One random episode through a game's methods, checked against the game contract (muzero/game.py).

A game written by a user (a module of their own, or an environment behind an adapter) that returns
an observation of the wrong shape, a legal-move mask of the wrong length or a player number out of
range would otherwise fail deep inside the search or the network with an array's shape; this
names the class and the method instead, before a run starts.
"""

from __future__ import annotations

import numpy as np

from muzero.config import Config
from muzero.game import Game, GameError
from muzero.plugins import GamePlugin


class GameContractError(GameError):
    """A game's method returned what the game contract does not allow."""


def check_game_contract(plugin: GamePlugin, config: Config, max_moves: int = 1000) -> None:
    """Play one episode of uniformly random legal moves (at most `max_moves`) in a fresh game and
    raise `GameContractError` at the first answer that breaks the contract."""
    game = plugin.make_game(config, np.random.default_rng(0))
    name = type(game).__name__
    _check_sizes(game, name)
    rng = np.random.default_rng(0)
    for _ in range(max_moves):
        _check_position(game, name)
        if bool(game.terminal()):
            return
        move = int(rng.choice(np.flatnonzero(game.legal_actions())))
        rewards = np.asarray(game.step(move))
        if rewards.shape != (game.num_players,) or not np.issubdtype(rewards.dtype, np.number) \
                or not np.isfinite(rewards).all():
            raise GameContractError(f"{name}.step({move}) returned rewards {rewards.tolist()} "
                                    f"(shape {rewards.shape}); expected {game.num_players} "
                                    f"finite numbers, one per player")


def _check_sizes(game: Game, name: str) -> None:
    shape = getattr(game, "observation_shape", None)
    if not isinstance(shape, tuple) or not shape or \
            not all(isinstance(size, (int, np.integer)) and size >= 1 for size in shape):
        raise GameContractError(f"{name}.observation_shape is {shape!r}; expected a tuple of "
                                f"positive integers")
    for attribute in ("num_players", "num_actions"):
        value = getattr(game, attribute, None)
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise GameContractError(f"{name}.{attribute} is {value!r}; expected an integer >= 1")


def _check_position(game: Game, name: str) -> None:
    observation = game.observation()
    if not isinstance(observation, np.ndarray) or observation.shape != tuple(
            game.observation_shape) or observation.dtype != np.float32:
        described = (f"shape {observation.shape}, dtype {observation.dtype}"
                     if isinstance(observation, np.ndarray) else type(observation).__name__)
        raise GameContractError(f"{name}.observation() returned {described}; expected a float32 "
                                f"array of shape {tuple(game.observation_shape)} "
                                f"(observation_shape)")
    if not np.isfinite(observation).all():
        raise GameContractError(f"{name}.observation() holds non-finite numbers")
    legal = game.legal_actions()
    if not isinstance(legal, np.ndarray) or legal.shape != (game.num_actions,) or \
            legal.dtype != bool:
        described = (f"shape {legal.shape}, dtype {legal.dtype}" if isinstance(legal, np.ndarray)
                     else type(legal).__name__)
        raise GameContractError(f"{name}.legal_actions() returned {described}; expected a bool "
                                f"array of shape ({game.num_actions},) (num_actions)")
    if bool(game.terminal()):
        if legal.any():
            raise GameContractError(f"{name}.legal_actions() allows moves after terminal() "
                                    f"said the game is over")
        return
    if not legal.any():
        raise GameContractError(f"{name}.legal_actions() allows no move, but terminal() says "
                                f"the game goes on")
    player = game.to_play()
    if not isinstance(player, (int, np.integer)) or isinstance(player, bool) or \
            not 0 <= player < game.num_players:
        raise GameContractError(f"{name}.to_play() returned {player!r}; expected a player "
                                f"number in [0, {game.num_players})")
