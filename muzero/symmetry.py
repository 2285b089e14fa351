"""Data augmentation by a game's symmetries: a random symmetry of each training sample.

A board game that looks the same mirrored or rotated teaches the network eight positions per
position stored. The replay buffer draws one symmetry per sample and applies it through this
module, so augmentation is one job in one place, and a game without symmetries (or a run with
`augment_symmetries` off) gets the identity at no extra cost beyond a gather. The agent uses the
same gathers the other way round: it searches every view of a position and adds the views'
visit shares back in the original moves (`muzero.agent`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from muzero.config import Config
from muzero.plugins import GamePlugin


@dataclass(frozen=True)
class Symmetry:
    """A transformation of the game that maps legal play onto legal play.

    observation_index [prod(observation_shape)] and action_index [A] are gather indices: the
    transformed observation is observation.flat[observation_index] and the transformed policy is
    policy[action_index]; an action a becomes the position of a in action_index.
    """

    observation_index: np.ndarray
    action_index: np.ndarray


def symmetries_from_plugin(plugin: GamePlugin, config: Config) -> list[Symmetry]:
    """The game's declared symmetries (its optional `symmetries(config)`), or none."""
    if plugin.symmetries is None:
        return []
    return [Symmetry(np.asarray(o, np.int64), np.asarray(a, np.int64))
            for o, a in plugin.symmetries(config)]


class Augmentation:
    """The symmetries one buffer draws from (the identity alone when there are none), as stacked
    gather indices so that a batch is transformed with three gathers."""

    def __init__(self, symmetries: Sequence[Symmetry], observation_shape: tuple[int, ...],
                 num_actions: int):
        size = int(np.prod(observation_shape))
        chosen = list(symmetries) or [Symmetry(np.arange(size), np.arange(num_actions))]
        for symmetry in chosen:
            if sorted(symmetry.observation_index.tolist()) != list(range(size)) or \
                    sorted(symmetry.action_index.tolist()) != list(range(num_actions)):
                raise ValueError("a symmetry's indices must be permutations of the observation "
                                 "cells and of the actions")
        self.observation_shape = tuple(observation_shape)
        self._observation_index = np.stack([s.observation_index for s in chosen])  # [S, obs]
        self._policy_index = np.stack([s.action_index for s in chosen])  # [S, A]
        self._action_map = np.argsort(self._policy_index, axis=1).astype(np.int32)  # [S, A]

    @property
    def count(self) -> int:
        """How many symmetries (the identity alone counts one)."""
        return len(self._policy_index)

    def draw(self, rng: np.random.Generator, batch_size: int) -> np.ndarray:
        """One symmetry per sample [B]."""
        return rng.integers(len(self._policy_index), size=batch_size)

    def observations(self, observations: np.ndarray, chosen: np.ndarray) -> np.ndarray:
        """observations [B, *observation_shape], each transformed by its chosen symmetry."""
        flat = observations.reshape(len(chosen), -1)
        flat = np.take_along_axis(flat, self._observation_index[chosen], 1)
        return flat.reshape((len(chosen),) + self.observation_shape)

    def actions(self, actions: np.ndarray, chosen: np.ndarray) -> np.ndarray:
        """actions [B, K] mapped through each sample's symmetry."""
        return np.take_along_axis(self._action_map[chosen], actions, 1)

    def policies(self, policies: np.ndarray, chosen: np.ndarray) -> np.ndarray:
        """policies [B, K + 1, A] permuted by each sample's symmetry."""
        return np.take_along_axis(policies, self._policy_index[chosen][:, None, :], 2)

    def masks(self, masks: np.ndarray, chosen: np.ndarray) -> np.ndarray:
        """Per-action rows [B, A] (legal moves) permuted by each sample's symmetry."""
        return np.take_along_axis(masks, self._policy_index[chosen], 1)

    def restore(self, policies: np.ndarray, chosen: np.ndarray) -> np.ndarray:
        """Per-action rows [B, A] of transformed positions, back in the original actions."""
        return np.take_along_axis(policies, self._action_map[chosen], 1)


def with_identity(symmetries: Sequence[Symmetry], observation_shape: tuple[int, ...],
                  num_actions: int) -> list[Symmetry]:
    """The identity first, then the other symmetries: every distinct view of a position."""
    identity = Symmetry(np.arange(int(np.prod(observation_shape))), np.arange(num_actions))
    others = [symmetry for symmetry in symmetries
              if not (np.array_equal(symmetry.observation_index, identity.observation_index)
                      and np.array_equal(symmetry.action_index, identity.action_index))]
    return [identity, *others]
