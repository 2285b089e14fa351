"""The search tree as a struct of preallocated arrays, and the settings every search shares.

Per-edge copies of each child's visit count and Q (written during backup) keep selection on a few
contiguous rows of a node instead of a scattered read of every child.

B trees are searched at once; each has room for `num_simulations + 1` nodes. The root is node 0 and
the node expanded at simulation i (counting from 0) gets index i + 1 in every tree, so a node index
is also the slot of its hidden state. Arrays are allocated once and reused for every move: a node's
row is (re)initialised when the node is created, so nothing needs clearing between moves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from muzero.config import Config

ROOT = 0
NO_PARENT = -1  # parent of the root
NO_ACTION = -1  # action leading to the root
UNEXPANDED = -1  # children[b, n, a]: legal edge whose child has no node yet
ILLEGAL = -2  # children[b, ROOT, a]: the environment forbids this action at the root

RULE_UCB = 0  # Q_norm + P * sqrt(2 * N_parent) / (1 + N_child)
RULE_PUCT = 1  # Q_norm + P * sqrt(N_parent) / (1 + N_child) * (c1 + log((N_parent + c2 + 1) / c2))
RULES = {"ucb": RULE_UCB, "puct": RULE_PUCT}
NODE_SPAN_FLOOR = 1e-8  # node bounds: a node whose values are all equal normalises them to 0


@dataclass(frozen=True)
class SearchSettings:
    """What a search needs from the config, as plain numbers (kernels never see the config)."""

    num_simulations: int
    discount: float
    rule: int
    pb_c_init: float
    pb_c_base: float
    dirichlet_alpha: float
    exploration_fraction: float
    freezing_moves: int
    temperature: float
    known_value_min: float = 0.0  # equal bounds: none known (each tree's own min-max)
    known_value_max: float = 0.0
    # Normalise Q at each node by the range of its own mean value and visited children's Q
    # (DeepMind's mctx does so) instead of the whole tree's: where values shrink with the moves
    # left, the tree's range mostly measures depth, and the gaps between siblings vanish in it.
    node_bounds: bool = False
    # ...and by at least this span, so that a gap between siblings smaller than it stays small
    # instead of being stretched to the whole [0, 1] (config.node_span_floor)
    node_span_floor: float = NODE_SPAN_FLOOR
    gumbel: bool = False  # Gumbel MuZero at the root and below (see gumbel.py)
    gumbel_noise: bool = False  # draw Gumbel noise at the root (self-play); off: deterministic
    considered_actions: int = 16  # m: root actions sampled by Gumbel-top-k
    c_visit: float = 50.0  # sigma(q) = (c_visit + max visits) * c_scale * q
    c_scale: float = 1.0

    def root_noise(self, rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray | None:
        """The root's noise for one move, or None: gamma draws for the Dirichlet noise of MuZero,
        Gumbel(0, 1) draws for Gumbel MuZero."""
        if self.gumbel:
            return rng.gumbel(size=shape) if self.gumbel_noise else None
        if self.exploration_fraction > 0.0:
            return rng.standard_gamma(self.dirichlet_alpha, shape)
        return None

    def initial_bounds(self) -> tuple[float, float]:
        """The (low, high) a fresh tree's Q statistics start from: the known bounds, which Q
        values seen later can only widen (the paper's MinMaxStats(known_bounds)), or an empty
        range."""
        if self.known_value_max > self.known_value_min:
            return self.known_value_min, self.known_value_max
        return math.inf, -math.inf

    @classmethod
    def from_config(cls, config: Config, add_noise: bool = True) -> SearchSettings:
        """Self-play settings; `add_noise=False` for evaluation (no noise at the root)."""
        gumbel = config.search == "gumbel"
        return cls(
            num_simulations=config.num_simulations,
            discount=config.discount,
            rule=RULES[config.selection_rule],
            pb_c_init=config.pb_c_init,
            pb_c_base=config.pb_c_base,
            dirichlet_alpha=config.root_dirichlet_alpha,
            exploration_fraction=(config.root_exploration_fraction
                                  if add_noise and not gumbel else 0.0),
            freezing_moves=config.freezing_moves,
            temperature=config.temperature,
            known_value_min=config.known_value_min,
            known_value_max=config.known_value_max,
            node_bounds=config.q_normalisation == "node",
            node_span_floor=max(config.node_span_floor, NODE_SPAN_FLOOR),
            gumbel=gumbel,
            gumbel_noise=gumbel and add_noise,
            considered_actions=config.gumbel_considered_actions,
            c_visit=config.gumbel_c_visit,
            c_scale=config.gumbel_c_scale,
        )


class TreeArrays(NamedTuple):
    """B trees of N = num_simulations + 1 nodes, A actions and P players.

    A named tuple so that the kernels take the tree as one argument (Numba types a named tuple
    of arrays like separate arrays; the dispatch costs about 2.5 us more per call, under 1% of
    a move's search at --envs 64).
    """

    children: np.ndarray  # [B, N, A] int32: child node, UNEXPANDED or ILLEGAL
    edge_visits: np.ndarray  # [B, N, A] int32: visit_count of each child (0 if none)
    edge_q: np.ndarray  # [B, N, A] float64: each child's Q for the player who moves at the node
    visit_count: np.ndarray  # [B, N] int32
    value_sum: np.ndarray  # [B, N, P] float64: sum of backed-up returns, one per player
    reward: np.ndarray  # [B, N, P] float64: reward of every player on the edge into the node
    prior: np.ndarray  # [B, N, A] float64
    node_value: np.ndarray  # [B, N, P] float64: the network's value at each node (Gumbel's v)
    root_gumbel: np.ndarray  # [B, A] float64: the root's Gumbel draws (0 without noise)
    to_play: np.ndarray  # [B, N] int32: player who chooses the action at the node
    parent: np.ndarray  # [B, N] int32: NO_PARENT for the root
    action_from_parent: np.ndarray  # [B, N] int32: NO_ACTION for the root
    min_q: np.ndarray  # [B] float64: smallest Q seen in the tree, for normalisation
    max_q: np.ndarray  # [B] float64

    @classmethod
    def allocate(cls, batch_size: int, num_nodes: int, num_actions: int,
                 num_players: int) -> TreeArrays:
        shape = (batch_size, num_nodes)
        return cls(
            children=np.full(shape + (num_actions,), UNEXPANDED, dtype=np.int32),
            edge_visits=np.zeros(shape + (num_actions,), dtype=np.int32),
            edge_q=np.zeros(shape + (num_actions,), dtype=np.float64),
            visit_count=np.zeros(shape, dtype=np.int32),
            value_sum=np.zeros(shape + (num_players,), dtype=np.float64),
            reward=np.zeros(shape + (num_players,), dtype=np.float64),
            prior=np.zeros(shape + (num_actions,), dtype=np.float64),
            node_value=np.zeros(shape + (num_players,), dtype=np.float64),
            root_gumbel=np.zeros((batch_size, num_actions), dtype=np.float64),
            to_play=np.zeros(shape, dtype=np.int32),
            parent=np.full(shape, NO_PARENT, dtype=np.int32),
            action_from_parent=np.full(shape, NO_ACTION, dtype=np.int32),
            min_q=np.full(batch_size, np.inf),
            max_q=np.full(batch_size, -np.inf),
        )


def halving_schedule(num_considered: int, num_simulations: int) -> list[int]:
    """Sequential halving of Gumbel MuZero as a list: entry s is how many visits the root action
    that simulation s goes to has before it (only actions with that count are candidates; the
    best of them by g + logits + sigma(q) is taken).

    The budget is split evenly over ceil(log2(m)) phases; each phase gives every remaining
    action the same number of visits (at least one), then keeps the better half, never fewer
    than two. Budget left after the last phase keeps visiting the final two in turn. With m = 1
    every simulation goes to the one action.
    """
    if num_considered <= 1:
        return list(range(num_simulations))
    phases = math.ceil(math.log2(num_considered))
    schedule: list[int] = []
    remaining, visits_each = num_considered, 0
    while len(schedule) < num_simulations:
        rounds = max(1, num_simulations // (phases * remaining))
        for _ in range(rounds):
            schedule.extend([visits_each] * remaining)
            visits_each += 1
        remaining = max(2, remaining // 2)
    return schedule[:num_simulations]


def halving_table(max_considered: int, num_simulations: int) -> np.ndarray:
    """[max_considered + 1, S] int32: `halving_schedule(m, S)` in row m (row 0 unused), so a
    kernel looks up the schedule of a root with fewer legal actions than `max_considered`."""
    table = np.zeros((max_considered + 1, max(num_simulations, 1)), dtype=np.int32)
    for m in range(1, max_considered + 1):
        table[m, :num_simulations] = halving_schedule(m, num_simulations)
    return table
