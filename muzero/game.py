"""The game contract every environment implements, and the players that act in one.

A game is multi-player by design: after every move *every* player may be rewarded, so `step` returns
a reward vector with one entry per player. The base class owns the checks that every game needs
(finished game, action type and range, legality), so each game only writes its own rules.
"""

from __future__ import annotations

import abc
from typing import Protocol

import numpy as np


class GameError(ValueError):
    """A move or a query that the rules of the game do not allow."""


class IllegalActionError(GameError):
    """The action is out of range, not an integer, or not legal in the current position."""


class GameOverError(GameError):
    """The game has ended; it must be reset before another move."""


class Game(abc.ABC):
    """One environment instance.

    Subclasses set `num_players`, `num_actions` and `observation_shape` (class or instance
    attributes) and implement the abstract methods. Players are numbered 0..num_players-1.
    """

    num_players: int
    num_actions: int
    observation_shape: tuple[int, ...]
    #: None: the rules decide every reward, and a replay of a recorded game's moves must give
    #: the recorded rewards (the server checks uploads so). A game whose rewards depend on
    #: chance that a record does not carry declares (low, high) here instead: every recorded
    #: reward of every player must then lie within them.
    chance_reward_bounds: tuple[float, float] | None = None
    #: False where a record's moves cannot be replayed to check it: hidden state or chance
    #: outcomes the record does not carry change what is legal (an environment seeded per
    #: episode, a dice game). The server then checks only what the record itself shows.
    replayable_rules: bool = True
    #: The most moves an episode may last before it is cut (`truncated()`), where known.
    time_limit: int | None = None

    @abc.abstractmethod
    def reset(self) -> None:
        """Start a new episode (drawing any hidden randomness from the game's own generator)."""

    @abc.abstractmethod
    def legal_actions(self) -> np.ndarray:
        """Boolean mask [num_actions] of the moves allowed now; all False once the game is over."""

    @abc.abstractmethod
    def to_play(self) -> int:
        """The player who moves next."""

    @abc.abstractmethod
    def terminal(self) -> bool:
        """True once the episode has ended."""

    def truncated(self) -> bool:
        """True when the episode was cut short (a time limit), not ended by the rules: the
        position it stopped in still has a future, so value targets bootstrap from the search
        there instead of treating it as absorbing."""
        return False

    @abc.abstractmethod
    def observation(self) -> np.ndarray:
        """The current observation as a float32 array of shape `observation_shape`."""

    @abc.abstractmethod
    def render(self) -> str:
        """A human-readable text picture of the current state."""

    @abc.abstractmethod
    def _apply(self, action: int) -> np.ndarray:
        """Play a move already known to be legal; return float32 rewards [num_players]."""

    def step(self, action: int) -> np.ndarray:
        """Play `action` for the player to move and return the reward of every player [P]."""
        if self.terminal():
            raise GameOverError(f"{type(self).__name__}: the game is over; call reset() first")
        if isinstance(action, (bool, np.bool_)) or not isinstance(action, (int, np.integer)):
            raise IllegalActionError(
                f"{type(self).__name__}: action must be an integer, got {action!r}"
            )
        if not 0 <= action < self.num_actions:
            raise IllegalActionError(
                f"{type(self).__name__}: action {action} is out of range [0, {self.num_actions})"
            )
        if not self.legal_actions()[action]:
            raise IllegalActionError(
                f"{type(self).__name__}: action {action} is not legal here; legal actions are "
                f"{np.flatnonzero(self.legal_actions()).tolist()}"
            )
        return self._apply(int(action))


class Player(Protocol):
    """Anything that picks moves: an expert opponent, a random player, later a trained agent."""

    def select_action(self, game: Game) -> int:
        """Return a legal action for `game.to_play()` in the current position."""


class RandomPlayer:
    """Plays a uniformly random legal move; the weakest sensible baseline for any game."""

    def __init__(self, rng: np.random.Generator):
        self._rng = rng

    def select_action(self, game: Game) -> int:
        return int(self._rng.choice(np.flatnonzero(game.legal_actions())))
