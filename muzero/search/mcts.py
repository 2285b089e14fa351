"""One move of search for B positions: initial inference, S simulations, the choice of actions."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from muzero.search.batched import SearchTree, check_array
from muzero.search.model import Model
from muzero.search.tree import ROOT
from muzero.stopwatch import Stopwatch


class SearchResult(NamedTuple):
    actions: np.ndarray  # [B] int32: the moves to play
    policy: np.ndarray  # [B, A] float32: policy targets (visit shares, or Gumbel's improved policy)
    root_value: np.ndarray  # [B, P] float32: root search value of every player (value targets)


class MCTS:
    """Drives a `SearchTree` with a `Model`, keeping hidden states in one preallocated array.

    The node index is the hidden-state slot, so the parents' states for a recurrent call are one
    gather and the new states one column write. Time goes to the stopwatch phases "network"
    (model calls), "search" (tree kernels) and "hidden" (moving hidden states).
    """

    def __init__(self, tree: SearchTree, rng: np.random.Generator,
                 stopwatch: Stopwatch | None = None):
        self.tree = tree
        self.rng = rng
        self.stopwatch = stopwatch or Stopwatch()
        num_nodes = tree.settings.num_simulations + 1
        self._row_starts = np.arange(tree.batch_size) * num_nodes  # flat index of each root
        self._slots = np.zeros(tree.batch_size, dtype=np.int64)
        self._hidden: np.ndarray | None = None  # [B, S + 1, *hidden_shape]
        self._parent_hidden: np.ndarray | None = None  # [B, *hidden_shape]

    def _hidden_store(self, hidden_shape: tuple[int, ...]) -> np.ndarray:
        """Allocate the store on first use, and again only if the model's hidden shape changes."""
        shape = (self.tree.batch_size, self.tree.settings.num_simulations + 1) + hidden_shape
        if self._hidden is None or self._hidden.shape != shape:
            self._hidden = np.zeros(shape, dtype=np.float32)
            self._parent_hidden = np.zeros(shape[:1] + hidden_shape, dtype=np.float32)
        return self._hidden

    def _gather_parents(self, hidden: np.ndarray, parents: np.ndarray) -> np.ndarray:
        """hidden[b, parents[b]] for every tree, into a reused buffer (no allocation)."""
        batch = len(parents)
        slots = self._slots[:batch]
        np.add(self._row_starts[:batch], parents, out=slots)
        flat = hidden.reshape((-1,) + hidden.shape[2:])
        return np.take(flat, slots, axis=0, out=self._parent_hidden[:batch])

    def run(self, model: Model, observations: np.ndarray, legal: np.ndarray,
            to_play: np.ndarray, move_number: np.ndarray) -> SearchResult:
        """Search B positions: observations [B, *obs], legal [B, A] bool, to_play [B] int32,
        move_number [B] int32 (moves already played in each game, for the temperature schedule).

        B may be smaller than the tree's batch size: the first B trees do the work.
        """
        batch = len(observations)
        if not 1 <= batch <= self.tree.batch_size:
            raise ValueError(f"observations: expected 1 to {self.tree.batch_size} rows, got "
                             f"{batch}")
        tree = self.tree.head(batch)
        settings, watch = tree.settings, self.stopwatch
        move_number = check_array("move_number", move_number, (batch,), np.int32)
        watch.lap("other")
        initial = model.initial_inference(observations)
        watch.lap("network")
        hidden = self._hidden_store(initial.hidden.shape[1:])[:batch]
        hidden[:, ROOT] = initial.hidden
        watch.lap("hidden")
        noise = settings.root_noise(self.rng, (batch, tree.num_actions))
        tree.expand_roots(legal, to_play, initial.value, initial.policy_logits, noise)
        watch.lap("search")
        for simulation in range(settings.num_simulations):
            parents, actions = tree.select()
            watch.lap("search")
            parent_hidden = self._gather_parents(hidden, parents)
            watch.lap("hidden")
            output = model.recurrent_inference(parent_hidden, actions)
            watch.lap("network")
            hidden[:, simulation + 1] = output.hidden
            watch.lap("hidden")
            tree.expand_and_backup(output.reward, output.value, output.to_play,
                                   output.policy_logits)
            watch.lap("search")
        actions = tree.choose_actions(move_number, self.rng.random(batch))
        result = SearchResult(actions, tree.root_policy(), tree.root_values())
        watch.lap("search")
        return result
