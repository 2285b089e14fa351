"""What the search needs from a model: two batched calls with named outputs.

The learned MuZero network (through `muzero.batching`) implements this protocol, and so do the
exact models the tests use, so the same search runs on both.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

import numpy as np


class InitialOutput(NamedTuple):
    """Representation + prediction for B observations."""

    hidden: np.ndarray  # [B, *hidden_shape] float32
    value: np.ndarray  # [B, P] float32: every player's predicted return
    policy_logits: np.ndarray  # [B, A] float32


class RecurrentOutput(NamedTuple):
    """Dynamics + prediction for B (hidden state, action) pairs."""

    hidden: np.ndarray  # [B, *hidden_shape] float32
    reward: np.ndarray  # [B, P] float32: every player's reward for the move
    value: np.ndarray  # [B, P] float32
    to_play: np.ndarray  # [B] int32: predicted player to move in the new state
    policy_logits: np.ndarray  # [B, A] float32


class Model(Protocol):
    def initial_inference(self, observations: np.ndarray) -> InitialOutput: ...

    def recurrent_inference(self, hidden: np.ndarray, actions: np.ndarray) -> RecurrentOutput: ...
