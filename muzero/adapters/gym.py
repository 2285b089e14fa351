"""Gymnasium environments as games: `--game gym:CartPole-v1`.

Supported: `Discrete` action spaces, `Box` observations of any rank (passed on as float32, shape
unchanged: normalising is the network's job) and `Discrete` observations (one-hot). Each episode
resets with a seed drawn from the run's generator, so a run is reproducible. An episode cut by
the environment's time limit is `truncated()`, not over by the rules: its value targets
bootstrap from the search there. An `action_mask` in the step's info gives the legal moves.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from muzero.game import Game

PREFIX = "gym:"
SUPPORTED = ("actions: Discrete; observations: Box (any rank) or Discrete")


class UnsupportedEnvironmentError(ValueError):
    """The environment's spaces or rules are outside what the adapter can play."""


def _spaces():
    from gymnasium import spaces
    return spaces


def make_environment(env_id: str, options: dict[str, Any]):
    """`gymnasium.make(env_id, **options)`, with a message naming what went wrong."""
    import gymnasium
    try:
        return gymnasium.make(env_id, **options)
    except gymnasium.error.Error as error:
        raise UnsupportedEnvironmentError(f"gym:{env_id}: {error}") from None
    except TypeError as error:
        raise UnsupportedEnvironmentError(f"gym:{env_id}: bad --game-options {options}: "
                                          f"{error}") from None


def check_spaces(env_id: str, environment) -> None:
    """Refuse, at start-up, spaces the adapter cannot play, naming them."""
    spaces = _spaces()
    action, observation = environment.action_space, environment.observation_space
    if not isinstance(action, spaces.Discrete):
        raise UnsupportedEnvironmentError(
            f"gym:{env_id}: action space {action} is not supported ({SUPPORTED})")
    if not isinstance(observation, (spaces.Box, spaces.Discrete)):
        raise UnsupportedEnvironmentError(
            f"gym:{env_id}: observation space {observation} is not supported ({SUPPORTED})")


class GymGame(Game):
    """One Gymnasium environment behind the single-player game contract."""

    num_players = 1
    replayable_rules = False  # each episode's seed is not in its record

    def __init__(self, env_id: str, options: dict[str, Any], rng: np.random.Generator):
        self.env_id = env_id
        self.environment = make_environment(env_id, options)
        check_spaces(env_id, self.environment)
        spaces = _spaces()
        action_space = self.environment.action_space
        self.num_actions = int(action_space.n)
        self._action_start = int(action_space.start)
        observation_space = self.environment.observation_space
        self._one_hot = isinstance(observation_space, spaces.Discrete)
        self.observation_shape = ((int(observation_space.n),) if self._one_hot
                                  else tuple(observation_space.shape))
        spec = self.environment.spec
        self.time_limit = spec.max_episode_steps if spec is not None else None
        self._rng = rng
        self.reset()

    def reset(self) -> None:
        observation, info = self.environment.reset(seed=int(self._rng.integers(2**31)))
        self._set_observation(observation)
        self._mask = self._action_mask(info)
        self._terminated = self._truncated = False
        self.moves = 0

    def _set_observation(self, observation) -> None:
        if self._one_hot:
            self._observation = np.zeros(self.observation_shape, np.float32)
            self._observation[int(observation) - self.environment.observation_space.start] = 1
        else:
            self._observation = np.asarray(observation, np.float32).reshape(
                self.observation_shape)

    def _action_mask(self, info: dict) -> np.ndarray:
        mask = info.get("action_mask")
        if mask is None:
            return np.ones(self.num_actions, bool)
        mask = np.asarray(mask, bool)
        if mask.shape != (self.num_actions,) or not mask.any():
            raise UnsupportedEnvironmentError(
                f"gym:{self.env_id}: info['action_mask'] must be {self.num_actions} booleans "
                f"with at least one true, got {mask.tolist()}")
        return mask

    def legal_actions(self) -> np.ndarray:
        return np.zeros(self.num_actions, bool) if self.terminal() else self._mask.copy()

    def to_play(self) -> int:
        return 0

    def terminal(self) -> bool:
        return self._terminated or self._truncated

    def truncated(self) -> bool:
        return self._truncated and not self._terminated

    def observation(self) -> np.ndarray:
        return self._observation.copy()

    def render(self) -> str:
        values = np.array2string(self._observation.ravel()[:16], precision=3)
        return f"gym:{self.env_id} move {self.moves}: observation {values}"

    def _apply(self, action: int) -> np.ndarray:
        observation, reward, terminated, truncated, info = self.environment.step(
            action + self._action_start)
        self._set_observation(observation)
        self._terminated, self._truncated = bool(terminated), bool(truncated)
        self._mask = self._action_mask(info) if not self.terminal() else self._mask
        self.moves += 1
        return np.array([reward], np.float32)
