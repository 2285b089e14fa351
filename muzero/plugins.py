"""Finding games: `--game NAME` loads `games/NAME.py`; a dotted name loads the user's own module.

A game module is one file that defines
- `make_config() -> Config`: the game's default hyper-parameters;
- `make_game(config, rng) -> Game`: a fresh environment using `config.game_options` and `rng`;
and may define
- `OPPONENTS: dict[str, Callable[[Config, np.random.Generator], Player]]`: reference players;
- `reference_value(config) -> float`: the best achievable expected return, where it is known;
- `symmetries(config) -> list[(observation_index, action_index)]`: transformations that map the
  game onto itself, as gather indices (see `muzero.symmetry.Symmetry`), for data augmentation;
- `action_label(game, action) -> str` and `ACTION_COLUMNS: int`: how the browser play page
  draws the moves (a board game labels each cell with its stone and lays them out in rows).
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from muzero.config import Config
from muzero.game import Game, Player

BUILT_IN_PACKAGE = "games"


class UnknownGameError(LookupError):
    """The game name does not name a built-in game or an importable game module."""


@dataclass(frozen=True)
class GamePlugin:
    """What one game module provides, checked once when it is loaded."""

    name: str
    make_config: Callable[[], Config]
    make_game: Callable[[Config, np.random.Generator], Game]
    opponents: Mapping[str, Callable[[Config, np.random.Generator], Player]]
    reference_value: Callable[[Config], float] | None
    symmetries: Callable[[Config], list] | None = None
    action_label: Callable[[Game, int], str] | None = None
    action_columns: int | None = None
    #: adapter games: the config derived from the environment with these game options, and
    #: the lines saying how (see muzero/adapters/defaults.py)
    derive_config: Callable[[dict], tuple[Config, list[str]]] | None = None
    #: single-player: the return at which the environment counts as solved, where declared
    reward_threshold: float | None = None

    def default_config(self, game_options: dict | None = None) -> tuple[Config, list[str]]:
        """The game's defaults for these options, and how they were derived (adapters)."""
        if self.derive_config is not None:
            return self.derive_config(game_options or {})
        return self.make_config(), []


def folder_name(game: str) -> str:
    """A game's name as one portable path component (`gym:ALE/Pong-v5` -> `gym_ALE_Pong-v5`)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", game)


def available_games() -> list[str]:
    """Names of the built-in games, for error messages and `--help`."""
    package = importlib.import_module(BUILT_IN_PACKAGE)
    return sorted(info.name for info in pkgutil.iter_modules(package.__path__)
                  if not info.name.startswith("_"))


def load_game(name: str) -> GamePlugin:
    """Load a built-in game by name, any importable module by dotted path, or an environment
    of Gymnasium (`gym:ENV_ID`) or OpenSpiel (`spiel:NAME`)."""
    from muzero.adapters.plugins import adapter_plugin, is_adapter_name

    if is_adapter_name(name):
        return adapter_plugin(name)
    if not name or not all(part.isidentifier() for part in name.split(".")):
        raise UnknownGameError(
            f"unknown game {name!r}: a game is a built-in name ({', '.join(available_games())}) "
            f"or a dotted module path such as mypackage.mygame, or gym:ENV_ID or spiel:NAME")
    module_name = name if "." in name else f"{BUILT_IN_PACKAGE}.{name}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        missing = error.name or ""
        if module_name == missing or module_name.startswith(missing + "."):
            raise UnknownGameError(
                f"unknown game {name!r}: no module {module_name!r}. Available games: "
                f"{', '.join(available_games())}; or give the dotted path of your own game module"
            ) from None
        raise
    missing_names = [attr for attr in ("make_config", "make_game") if not callable(
        getattr(module, attr, None))]
    if missing_names:
        raise UnknownGameError(
            f"module {module_name!r} is not a game: it lacks {', '.join(missing_names)} "
            f"(see muzero/plugins.py for what a game module defines)")
    return GamePlugin(
        name=name,
        make_config=module.make_config,
        make_game=module.make_game,
        opponents=dict(getattr(module, "OPPONENTS", {})),
        reference_value=getattr(module, "reference_value", None),
        symmetries=getattr(module, "symmetries", None),
        action_label=getattr(module, "action_label", None),
        action_columns=getattr(module, "ACTION_COLUMNS", None),
    )
