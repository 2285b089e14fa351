"""Game plug-ins for adapter names: `gym:ENV_ID` and `spiel:NAME` (see `muzero.plugins`)."""

from __future__ import annotations

import functools
import json
from typing import Any

import numpy as np

from muzero.adapters import gym as gym_adapter
from muzero.adapters import spiel as spiel_adapter
from muzero.adapters.defaults import EnvironmentFacts, derive_config
from muzero.adapters.symmetries import verified_symmetries
from muzero.config import Config
from muzero.game import RandomPlayer

PREFIXES = (gym_adapter.PREFIX, spiel_adapter.PREFIX)


def is_adapter_name(name: str) -> bool:
    return name.startswith(PREFIXES)


def _gym_facts(game: gym_adapter.GymGame) -> EnvironmentFacts:
    return EnvironmentFacts(game.observation_shape, game.num_actions, 1, game.time_limit,
                            board_game=False, value_range=None)


def _spiel_facts(game: spiel_adapter.SpielGame) -> EnvironmentFacts:
    spiel = game.game
    board = game.num_players > 1 and spiel_adapter.terminal_rewards(spiel)
    return EnvironmentFacts(game.observation_shape, game.num_actions, game.num_players,
                            game.time_limit, board_game=board,
                            value_range=(spiel.min_utility(), spiel.max_utility()))


def adapter_plugin(name: str):
    """The `GamePlugin` of an adapter name; `UnknownGameError` if the environment is unknown."""
    from muzero.plugins import GamePlugin, UnknownGameError

    if name.startswith(gym_adapter.PREFIX):
        env_id = name[len(gym_adapter.PREFIX):]
        import gymnasium
        try:
            spec = gymnasium.spec(env_id)
        except gymnasium.error.Error as error:
            raise UnknownGameError(f"unknown game {name!r}: {error}") from None

        def make_game(config: Config, rng: np.random.Generator) -> gym_adapter.GymGame:
            return gym_adapter.GymGame(env_id, config.game_options, rng)

        def derive(options: dict[str, Any]) -> tuple[Config, list[str]]:
            probe = gym_adapter.GymGame(env_id, options, np.random.default_rng(0))
            return derive_config(name, options, _gym_facts(probe))

        opponents = {"random": lambda config, rng: RandomPlayer(rng)}
        threshold = spec.reward_threshold
        symmetries = None
    else:
        game_name = name[len(spiel_adapter.PREFIX):]
        import pyspiel
        if game_name not in pyspiel.registered_names():
            raise UnknownGameError(f"unknown game {name!r}: OpenSpiel has no game "
                                   f"{game_name!r}")

        def make_game(config: Config, rng: np.random.Generator) -> spiel_adapter.SpielGame:
            return spiel_adapter.SpielGame(game_name, config.game_options, rng)

        @functools.cache
        def symmetries_by_options(options_json: str) -> list:
            probe = spiel_adapter.SpielGame(game_name, json.loads(options_json),
                                            np.random.default_rng(0))
            return verified_symmetries(probe)

        def board_symmetries(options: dict[str, Any]) -> list:
            """Found once per game options (the discovery replays 100 games)."""
            return symmetries_by_options(json.dumps(options, sort_keys=True))

        def symmetries(config: Config) -> list:
            return board_symmetries(config.game_options)

        def derive(options: dict[str, Any]) -> tuple[Config, list[str]]:
            probe = spiel_adapter.SpielGame(game_name, options, np.random.default_rng(0))
            config, why = derive_config(name, options, _spiel_facts(probe))
            found = len(board_symmetries(options))
            held = f"{found} (the identity included)" if found else "none"
            why.append(f"symmetries: {held} of the board's rotations and reflections hold, "
                       f"tried by replaying random games; each training sample is seen through "
                       f"one at random while augment_symmetries is true "
                       f"(muzero/adapters/symmetries.py)")
            return config, why

        opponents = spiel_adapter.opponents(game_name)
        threshold = None
    return GamePlugin(name=name, make_config=lambda: derive({})[0], make_game=make_game,
                      opponents=opponents, reference_value=None, derive_config=derive,
                      reward_threshold=threshold, symmetries=symmetries)
