"""Numba kernels of Gumbel MuZero (Danihelka et al., ICLR 2022, "Policy improvement by planning
with Gumbel"), on the same tree arrays as kernels.py.

Why: with visit counts as the policy target, a search that visits an action rarely teaches
nothing about it, and Dirichlet noise is the only exploration. Gumbel MuZero samples m root
actions without replacement (Gumbel-top-m on the logits), spends the budget on them by
sequential halving, and trains the policy towards softmax(logits + sigma(completed Q)), which
improves on the network's policy in expectation whatever the number of simulations.

- completed Q: an action's Q where it was visited, elsewhere v_mix, the network's value of the
  node mixed with the prior-weighted mean Q of the visited actions (paper, eq. 33);
- sigma(q) = (c_visit + max_b N(b)) * c_scale * q, with q normalised by the tree's min-max
  statistics (the known bounds where given), 0.5 for every action while the tree has no range;
  or, with `node_bounds` (q_normalisation = node), at each node by its own mean value and its
  visited children's Q, as in MuZero's selection (kernels.node_range; DeepMind's mctx rescales
  completed Q per node too): where values shrink with the moves left, the tree's range mostly
  measures depth and the gaps between sibling moves vanish in it;
- root: the simulation's action is the best by g + logits + sigma(completed Q) among the actions
  that have exactly the visits the halving schedule names (tree.halving_schedule);
- below the root: argmax of pi'(a) - N(a) / (1 + sum N), pi' = softmax(logits + sigma);
- the move: the best survivor (most visits) by g + logits + sigma; without noise (g = 0) the
  choice is deterministic, for evaluation.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from muzero.search.kernels import node_range
from muzero.search.tree import ILLEGAL, NO_ACTION, ROOT, UNEXPANDED

LOW_LOGIT = -1e9  # log of a prior that underflowed to 0: never preferred, still finite


@njit(cache=True, nogil=True, inline="always")
def _improved_logits(tree, b, node, player, low, inverse_span, c_visit, c_scale, out):
    """out[a] = log prior(a) + sigma(completed Q(a)) at `node` (-inf for illegal actions).

    Returns the node's total edge visits."""
    children, edge_visits, edge_q, prior = tree.children, tree.edge_visits, tree.edge_q, tree.prior
    num_actions = children.shape[2]
    total_visits = 0
    most_visits = 0
    visited_prior = 0.0
    weighted_q = 0.0
    for a in range(num_actions):
        visits = edge_visits[b, node, a]
        if children[b, node, a] != ILLEGAL and visits > 0:
            total_visits += visits
            most_visits = max(most_visits, visits)
            visited_prior += prior[b, node, a]
            weighted_q += prior[b, node, a] * edge_q[b, node, a]
    v_mix = tree.node_value[b, node, player]
    if total_visits > 0 and visited_prior > 0.0:
        v_mix = (v_mix + total_visits * (weighted_q / visited_prior)) / (1.0 + total_visits)
    scale = (c_visit + most_visits) * c_scale
    for a in range(num_actions):
        if children[b, node, a] == ILLEGAL:
            out[a] = -np.inf
            continue
        q = edge_q[b, node, a] if edge_visits[b, node, a] > 0 else v_mix
        normalised = (q - low) * inverse_span if inverse_span > 0.0 else 0.5
        p = prior[b, node, a]
        out[a] = (math.log(p) if p > 0.0 else LOW_LOGIT) + scale * normalised
    return total_visits


@njit(cache=True, nogil=True, inline="always")
def _softmax_in_place(row):
    """row = softmax(row), -inf entries giving 0."""
    top = -np.inf
    for a in range(row.shape[0]):
        top = max(top, row[a])
    total = 0.0
    for a in range(row.shape[0]):
        row[a] = math.exp(row[a] - top) if row[a] > -np.inf else 0.0
        total += row[a]
    inverse_total = 1.0 / total
    for a in range(row.shape[0]):
        row[a] *= inverse_total


@njit(cache=True, nogil=True, inline="always")
def _bounds(tree, b, node, node_bounds, span_floor):
    """(low, 1 / span) that normalise Q at `node`: the node's own range (at least `span_floor`
    wide) with `node_bounds`, else the tree's (inverse span 0 while the tree has no range: every
    Q normalises to 0.5)."""
    if node_bounds:
        return node_range(tree, b, node, span_floor)
    low, high = tree.min_q[b], tree.max_q[b]
    return low, 1.0 / (high - low) if high > low else 0.0


@njit(cache=True, nogil=True, inline="always")
def _best_with_visits(tree, improved, b, visits):
    """The root action with exactly `visits` visits of highest g + improved logit (lowest index
    on ties)."""
    best = NO_ACTION
    best_score = -np.inf
    for a in range(tree.children.shape[2]):
        if tree.children[b, ROOT, a] == ILLEGAL or tree.edge_visits[b, ROOT, a] != visits:
            continue
        score = tree.root_gumbel[b, a] + improved[a]
        if best == NO_ACTION or score > best_score:
            best = a
            best_score = score
    return best


@njit(cache=True, nogil=True)
def select_leaves(tree, schedule, max_considered, c_visit, c_scale, node_bounds, span_floor,
                  scratch, out_parent, out_action):
    """Descend every tree to an unexpanded edge by Gumbel MuZero's rules.

    schedule [m + 1, S] int32: tree.halving_table; scratch [B, A] float64.
    """
    children, edge_visits, to_play = tree.children, tree.edge_visits, tree.to_play
    num_actions = children.shape[2]
    for b in range(children.shape[0]):
        # written out, not _bounds: a tuple-returning helper here made the tree-range search
        # 30-43% slower (benchmarks/test_search_speed.py, Gumbel at B = 64 and 256)
        low = tree.min_q[b]
        inverse_span = 1.0 / (tree.max_q[b] - low) if tree.max_q[b] > low else 0.0
        if node_bounds:
            low, inverse_span = node_range(tree, b, ROOT, span_floor)
        improved = scratch[b]
        simulation = _improved_logits(tree, b, ROOT, to_play[b, ROOT], low, inverse_span,
                                      c_visit, c_scale, improved)
        legal = 0
        for a in range(num_actions):
            if children[b, ROOT, a] != ILLEGAL:
                legal += 1
        considered = min(max_considered, legal)
        node = ROOT
        action = _best_with_visits(tree, improved, b, schedule[considered, simulation])
        if action == NO_ACTION:
            raise ValueError("no root action has the visits the halving schedule names")
        while children[b, node, action] != UNEXPANDED:
            node = children[b, node, action]
            if node_bounds:  # the tree's range holds for the whole descent
                low, inverse_span = node_range(tree, b, node, span_floor)
            total = _improved_logits(tree, b, node, to_play[b, node], low, inverse_span,
                                     c_visit, c_scale, improved)
            _softmax_in_place(improved)
            inverse_total = 1.0 / (1.0 + total)
            best_score = -np.inf
            for a in range(num_actions):
                score = improved[a] - edge_visits[b, node, a] * inverse_total
                if score > best_score:
                    best_score = score
                    action = a
        out_parent[b] = node
        out_action[b] = action


@njit(cache=True, nogil=True)
def root_statistics(tree, c_visit, c_scale, node_bounds, span_floor, scratch, out_policy,
                    out_value):
    """out_policy [B, A]: the improved policy softmax(logits + sigma(completed Q)) at the root
    (the policy target); out_value [B, P]: mean backed-up root return, as in MuZero."""
    for b in range(tree.children.shape[0]):
        improved = scratch[b]
        low, inverse_span = _bounds(tree, b, ROOT, node_bounds, span_floor)
        _improved_logits(tree, b, ROOT, tree.to_play[b, ROOT], low, inverse_span, c_visit,
                         c_scale, improved)
        _softmax_in_place(improved)
        for a in range(tree.children.shape[2]):
            out_policy[b, a] = improved[a]
        for p in range(tree.value_sum.shape[2]):
            out_value[b, p] = tree.value_sum[b, ROOT, p] / tree.visit_count[b, ROOT]


@njit(cache=True, nogil=True)
def choose_actions(tree, c_visit, c_scale, node_bounds, span_floor, scratch, out_action):
    """The move: among the most visited root actions (the halving's survivors), the best by
    g + logits + sigma(completed Q)."""
    for b in range(tree.children.shape[0]):
        low, inverse_span = _bounds(tree, b, ROOT, node_bounds, span_floor)
        _improved_logits(tree, b, ROOT, tree.to_play[b, ROOT], low, inverse_span, c_visit,
                         c_scale, scratch[b])
        most = 0
        for a in range(tree.children.shape[2]):
            most = max(most, tree.edge_visits[b, ROOT, a])
        out_action[b] = _best_with_visits(tree, scratch[b], b, most)
