"""Playing a game in the terminal: a person against one of the game's reference opponents."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from muzero.config import Config
from muzero.game import IllegalActionError, Player
from muzero.plugins import GamePlugin


def _ask_action(read: Callable[[str], str], write: Callable[[str], None], legal: np.ndarray) -> int:
    """Prompt until the person types a legal action number."""
    while True:
        answer = read(f"your move {np.flatnonzero(legal).tolist()}: ").strip()
        try:
            action = int(answer)
        except ValueError:
            write(f"not a number: {answer!r}")
            continue
        if 0 <= action < len(legal) and legal[action]:
            return action
        write(f"illegal move: {action}")


def play_in_terminal(plugin: GamePlugin, config: Config, opponent: str, human_seat: int,
                     read: Callable[[str], str] = input,
                     write: Callable[[str], None] = print,
                     bot: Player | None = None) -> np.ndarray:
    """Play one game, the person in `human_seat`, the named opponent in every other seat (or
    `bot`, e.g. a trained agent, shown under the name `opponent`).

    Returns the total reward of every player [P].
    """
    if bot is None and opponent not in plugin.opponents:
        raise ValueError(f"unknown opponent {opponent!r} for {plugin.name}; available: "
                         f"{', '.join(sorted(plugin.opponents)) or 'none'}")
    rng = np.random.default_rng(config.seed)
    game = plugin.make_game(config, rng)
    if not 0 <= human_seat < game.num_players:
        raise ValueError(f"seat {human_seat} is out of range: {plugin.name} has "
                         f"{game.num_players} player(s)")
    if bot is None:
        bot = plugin.opponents[opponent](config, rng)
    totals = np.zeros(game.num_players, dtype=np.float32)
    while not game.terminal():
        write(game.render())
        if game.to_play() == human_seat:
            action = _ask_action(read, write, game.legal_actions())
        else:
            action = bot.select_action(game)
            write(f"{opponent} plays {action}")
        try:
            totals += game.step(action)
        except IllegalActionError as error:
            raise RuntimeError(f"opponent {opponent!r} played an illegal move: {error}") from None
    write(game.render())
    write(f"total rewards per player: {totals.tolist()}")
    return totals
