"""The public face of a batched search: one boundary check per call, then the work.

`SearchTree` checks every array once (shape, dtype) and raises a ValueError naming the array; its
two implementations do the work: `NumbaTree` with the compiled kernels, `ReferenceTree`
(reference.py) in plain Python for tests and as the benchmark baseline. A move is
`expand_roots`, then `num_simulations` rounds of `select` and `expand_and_backup`, then
`root_policy`, `root_values` and `choose_actions`.
"""

from __future__ import annotations

import abc

import numpy as np

from muzero.search import gumbel, kernels
from muzero.search.tree import SearchSettings, TreeArrays, halving_table


def check_array(name: str, array: np.ndarray, shape: tuple[int, ...],
                dtype: type) -> np.ndarray:
    """Return `array` as a C-contiguous array, or raise a ValueError that names it."""
    if not isinstance(array, np.ndarray) or array.shape != shape or array.dtype != dtype:
        got = (f"shape {array.shape} and dtype {array.dtype}" if isinstance(array, np.ndarray)
               else type(array).__name__)
        raise ValueError(f"{name}: expected an array of shape {shape} and dtype "
                         f"{np.dtype(dtype).name}, got {got}")
    return np.ascontiguousarray(array)


def exploration_reciprocals(num_simulations: int) -> np.ndarray:
    """1 / (1 + n) for every edge visit count n a search can reach: [S + 1] float64."""
    return 1.0 / (1.0 + np.arange(num_simulations + 1, dtype=np.float64))


class SearchTree(abc.ABC):
    """B trees searched in lockstep, reused move after move."""

    def __init__(self, batch_size: int, num_actions: int, num_players: int,
                 settings: SearchSettings):
        if min(batch_size, num_actions, num_players) < 1:
            raise ValueError("batch_size, num_actions and num_players must all be >= 1")
        self.batch_size = batch_size
        self.num_actions = num_actions
        self.num_players = num_players
        self.settings = settings
        self.simulation = 0  # simulations done since the last expand_roots

    def expand_roots(self, legal: np.ndarray, to_play: np.ndarray, value: np.ndarray,
                     policy_logits: np.ndarray, noise: np.ndarray | None = None) -> None:
        """Start a move: legal [B, A] bool, to_play [B] int32, value [B, P] and policy_logits
        [B, A] float32 from initial inference, noise [B, A] float64 gamma draws (None: no noise).
        """
        B, A, P = self.batch_size, self.num_actions, self.num_players
        legal = check_array("legal", legal, (B, A), np.bool_)
        if not legal.any(axis=1).all():
            raise ValueError(f"legal: trees {np.flatnonzero(~legal.any(axis=1)).tolist()} have "
                             f"no legal action; a finished game cannot be searched")
        to_play = check_array("to_play", to_play, (B,), np.int32)
        value = check_array("value", value, (B, P), np.float32)
        policy_logits = check_array("policy_logits", policy_logits, (B, A), np.float32)
        fraction = 0.0 if self.settings.gumbel else self.settings.exploration_fraction
        if noise is None:
            noise, fraction = np.zeros((B, A)), 0.0
        noise = check_array("noise", noise, (B, A), np.float64)
        self._expand_roots(legal, to_play, value, policy_logits, noise, fraction)
        self.simulation = 0

    def select(self) -> tuple[np.ndarray, np.ndarray]:
        """Pick one unexpanded edge per tree: (parent node [B] int32, action [B] int32).

        The parent's hidden state and the action are the input of the next recurrent inference;
        the new node will get index `simulation + 1`. The arrays are reused buffers, valid until
        the next `select`; do not modify them.
        """
        if self.simulation >= self.settings.num_simulations:
            raise ValueError(f"all {self.settings.num_simulations} simulations are done; call "
                             f"expand_roots to start the next move")
        return self._select()

    def expand_and_backup(self, reward: np.ndarray, value: np.ndarray, to_play: np.ndarray,
                          policy_logits: np.ndarray) -> None:
        """Attach the recurrent inference output at the edges chosen by the last `select`:
        reward [B, P], value [B, P], policy_logits [B, A] float32 and to_play [B] int32.
        """
        B, A, P = self.batch_size, self.num_actions, self.num_players
        reward = check_array("reward", reward, (B, P), np.float32)
        value = check_array("value", value, (B, P), np.float32)
        to_play = check_array("to_play", to_play, (B,), np.int32)
        policy_logits = check_array("policy_logits", policy_logits, (B, A), np.float32)
        self._expand_and_backup(reward, value, to_play, policy_logits)
        self.simulation += 1

    def choose_actions(self, move_number: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
        """Actions [B] int32: sampled by visit count while move_number[b] < freezing_moves,
        most visited afterwards; uniforms [B] float64 in [0, 1) drive the sampling. With
        `settings.gumbel` the root's Gumbel draws do the sampling: the best survivor of the
        halving, whatever the move number."""
        move_number = check_array("move_number", move_number, (self.batch_size,), np.int32)
        uniforms = check_array("uniforms", uniforms, (self.batch_size,), np.float64)
        return self._choose_actions(move_number, uniforms)

    @abc.abstractmethod
    def head(self, rows: int) -> SearchTree:
        """A tree of the first `rows` trees (1 <= rows <= batch_size), for a smaller batch.

        Its state after a move is its own; the next `expand_roots` of this tree starts afresh.
        """

    @abc.abstractmethod
    def root_policy(self) -> np.ndarray:
        """The policy target [B, A] float32: the root's visit shares, or with `settings.gumbel`
        the improved policy softmax(logits + sigma(completed Q))."""

    @abc.abstractmethod
    def root_values(self) -> np.ndarray:
        """Mean backed-up return of the root for every player [B, P] float32 (value target)."""

    @abc.abstractmethod
    def _expand_roots(self, legal, to_play, value, policy_logits, noise, fraction) -> None: ...

    @abc.abstractmethod
    def _select(self) -> tuple[np.ndarray, np.ndarray]: ...

    @abc.abstractmethod
    def _expand_and_backup(self, reward, value, to_play, policy_logits) -> None: ...

    @abc.abstractmethod
    def _choose_actions(self, move_number, uniforms) -> np.ndarray: ...


class NumbaTree(SearchTree):
    """The compiled implementation: one kernel call per step for all B trees."""

    def __init__(self, batch_size: int, num_actions: int, num_players: int,
                 settings: SearchSettings, arrays: TreeArrays | None = None):
        super().__init__(batch_size, num_actions, num_players, settings)
        self.arrays = arrays or TreeArrays.allocate(batch_size, settings.num_simulations + 1,
                                                    num_actions, num_players)
        self._heads: dict[int, NumbaTree] = {batch_size: self}
        self._reciprocal = exploration_reciprocals(settings.num_simulations)
        if settings.gumbel:  # the halving schedule and a row of improved logits per tree
            self._halving = halving_table(min(settings.considered_actions, num_actions),
                                          settings.num_simulations)
            self._scratch = np.zeros((batch_size, num_actions))
        self._returns = np.zeros((batch_size, num_players))
        self._parent_out = np.zeros(batch_size, dtype=np.int32)
        self._action_out = np.zeros(batch_size, dtype=np.int32)
        self._chosen_out = np.zeros(batch_size, dtype=np.int32)
        self._policy_out = np.zeros((batch_size, num_actions), dtype=np.float32)
        self._value_out = np.zeros((batch_size, num_players), dtype=np.float32)

    def head(self, rows: int) -> NumbaTree:
        """A view of the first `rows` trees: it shares their arrays (leading rows of C-contiguous
        arrays are C-contiguous, so the kernels run on them unchanged); cached per size."""
        if not 1 <= rows <= self.batch_size:
            raise ValueError(f"rows must be in [1, {self.batch_size}], got {rows}")
        if rows not in self._heads:
            arrays = TreeArrays(*(array[:rows] for array in self.arrays))
            self._heads[rows] = NumbaTree(rows, self.num_actions, self.num_players,
                                          self.settings, arrays)
        return self._heads[rows]

    def _expand_roots(self, legal, to_play, value, policy_logits, noise, fraction):
        kernels.expand_roots(self.arrays, legal, to_play, value, policy_logits, noise, fraction,
                             *self.settings.initial_bounds())
        if self.settings.gumbel:
            self.arrays.root_gumbel[:] = noise

    def _select(self):
        s = self.settings
        if s.gumbel:
            gumbel.select_leaves(self.arrays, self._halving, self._halving.shape[0] - 1,
                                 s.c_visit, s.c_scale, s.node_bounds, s.node_span_floor,
                                 self._scratch, self._parent_out, self._action_out)
        else:
            kernels.select_leaves(self.arrays, self._reciprocal, s.rule, s.pb_c_init,
                                  s.pb_c_base, s.node_bounds, s.node_span_floor, self._parent_out,
                                  self._action_out)
        return self._parent_out, self._action_out

    def _expand_and_backup(self, reward, value, to_play, policy_logits):
        kernels.expand_and_backup(self.arrays, self._returns, self.simulation + 1,
                                  self._parent_out, self._action_out, reward, value, to_play,
                                  policy_logits, self.settings.discount)

    def root_policy(self) -> np.ndarray:
        self._root_statistics()
        return self._policy_out.copy()

    def root_values(self) -> np.ndarray:
        self._root_statistics()
        return self._value_out.copy()

    def _root_statistics(self) -> None:
        s = self.settings
        if s.gumbel:
            gumbel.root_statistics(self.arrays, s.c_visit, s.c_scale, s.node_bounds,
                                   s.node_span_floor, self._scratch, self._policy_out,
                                   self._value_out)
        else:
            kernels.root_statistics(self.arrays, self._policy_out, self._value_out)

    def _choose_actions(self, move_number, uniforms):
        s = self.settings
        if s.gumbel:
            gumbel.choose_actions(self.arrays, s.c_visit, s.c_scale, s.node_bounds,
                                  s.node_span_floor, self._scratch, self._chosen_out)
            return self._chosen_out.copy()
        kernels.choose_actions(self.arrays, move_number, s.freezing_moves, s.temperature,
                               uniforms, self._chosen_out)
        return self._chosen_out.copy()
