"""Numba kernels of the batched search: each call does one step for all B trees.

Kernels see only the tree (tree.TreeArrays, a named tuple of arrays), arrays and numbers,
release the GIL, and allocate nothing, so a simulation costs a few hundred nanoseconds per
tree plus one dispatch per call.
Floating-point work is done in float64 in the same order as `reference.py`, which makes the two
implementations agree to the last bit.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from muzero.search.tree import (
    ILLEGAL,
    NO_ACTION,
    NO_PARENT,
    ROOT,
    RULE_UCB,
    UNEXPANDED,
)


@njit(cache=True, nogil=True, inline="always")
def _write_softmax(logits, out, legal_row):
    """out[a] = softmax(logits) over the legal actions; every action when legal_row is None."""
    top = -np.inf
    for a in range(logits.shape[0]):
        if (legal_row is None or legal_row[a]) and logits[a] > top:
            top = logits[a]
    total = 0.0
    for a in range(logits.shape[0]):
        if legal_row is None or legal_row[a]:
            out[a] = math.exp(float(logits[a]) - top)
            total += out[a]
        else:
            out[a] = 0.0
    inverse_total = 1.0 / total
    for a in range(logits.shape[0]):
        out[a] *= inverse_total


@njit(cache=True, nogil=True)
def expand_roots(tree, legal, root_to_play, root_value, policy_logits, noise, noise_fraction,
                 initial_low, initial_high):
    """Make node 0 of every tree (a tree.TreeArrays) a fresh root from the representation +
    prediction output.

    legal [B, A] bool, root_to_play [B] int32, root_value [B, P], policy_logits [B, A],
    noise [B, A] positive gamma draws (a Dirichlet sample once normalised over legal actions).
    The root counts as visited once, with its predicted value, as a leaf would. The Q
    statistics start at (initial_low, initial_high): known bounds, or (inf, -inf) for none.
    """
    children, prior, value_sum = tree.children, tree.prior, tree.value_sum
    num_trees, _, num_actions = children.shape
    num_players = value_sum.shape[2]
    for b in range(num_trees):
        player = root_to_play[b]
        if player < 0 or player >= num_players:
            raise ValueError("root to_play is out of range [0, num_players)")
        _write_softmax(policy_logits[b], prior[b, ROOT], legal[b])
        if noise_fraction > 0.0:
            noise_total = 0.0
            for a in range(num_actions):
                if legal[b, a]:
                    noise_total += noise[b, a]
            for a in range(num_actions):
                if legal[b, a]:
                    prior[b, ROOT, a] = ((1.0 - noise_fraction) * prior[b, ROOT, a]
                                         + noise_fraction * (noise[b, a] / noise_total))
        for a in range(num_actions):
            children[b, ROOT, a] = UNEXPANDED if legal[b, a] else ILLEGAL
            tree.edge_visits[b, ROOT, a] = 0
            tree.edge_q[b, ROOT, a] = 0.0
        for p in range(num_players):
            value_sum[b, ROOT, p] = root_value[b, p]
            tree.node_value[b, ROOT, p] = root_value[b, p]
            tree.reward[b, ROOT, p] = 0.0
        tree.visit_count[b, ROOT] = 1
        tree.to_play[b, ROOT] = player
        tree.parent[b, ROOT] = NO_PARENT
        tree.action_from_parent[b, ROOT] = NO_ACTION
        tree.min_q[b] = initial_low
        tree.max_q[b] = initial_high


@njit(cache=True, nogil=True, inline="always")
def _q_value(tree, b, child, player, discount):
    """Q of the edge into `child` for `player`: reward now plus the discounted mean return."""
    return tree.reward[b, child, player] + discount * (tree.value_sum[b, child, player]
                                                       / tree.visit_count[b, child])


@njit(cache=True, nogil=True, inline="always")
def _best_action(tree, b, node, low, inverse_span, reciprocal, rule, pb_c_init, pb_c_base):
    """The action maximising normalised Q + exploration for the player who moves at `node`.

    Unvisited edges score Q = 0 (the paper's pseudocode); ties go to the lowest action index.
    `inverse_span` is 1 / (max_q - min_q), or 0 while the tree has no range (then Q is used raw);
    reciprocal[n] = 1 / (1 + n). Both turn the two divisions per edge into multiplications.
    """
    children, edge_visits, edge_q, prior = tree.children, tree.edge_visits, tree.edge_q, tree.prior
    parent_visits = float(tree.visit_count[b, node])
    if rule == RULE_UCB:
        scale = math.sqrt(2.0 * parent_visits)
    else:
        scale = math.sqrt(parent_visits) * (
            pb_c_init + math.log((parent_visits + pb_c_base + 1.0) / pb_c_base))
    best_score = -np.inf
    best = NO_ACTION
    for a in range(children.shape[2]):
        child = children[b, node, a]
        if child == ILLEGAL:
            continue
        q = 0.0
        if child != UNEXPANDED:
            q = edge_q[b, node, a]
            if inverse_span > 0.0:
                q = (q - low) * inverse_span
        score = q + prior[b, node, a] * scale * reciprocal[edge_visits[b, node, a]]
        if score > best_score:
            best_score = score
            best = a
    return best


@njit(cache=True, nogil=True, inline="always")
def node_range(tree, b, node, span_floor):
    """(low, 1 / max(high - low, span_floor)) over a node's mean value and its visited
    children's Q, for the player who moves there."""
    low = high = tree.value_sum[b, node, tree.to_play[b, node]] / tree.visit_count[b, node]
    for a in range(tree.children.shape[2]):
        if tree.children[b, node, a] >= 0:
            low = min(low, tree.edge_q[b, node, a])
            high = max(high, tree.edge_q[b, node, a])
    return low, 1.0 / max(high - low, span_floor)


@njit(cache=True, nogil=True)
def select_leaves(tree, reciprocal, rule, pb_c_init, pb_c_base, node_bounds, span_floor,
                  out_parent, out_action):
    """Descend every tree from the root to an unexpanded edge.

    Writes out_parent [B] (the node whose hidden state the dynamics function takes) and
    out_action [B] (the action to apply there). reciprocal [S + 1]: 1 / (1 + n). With
    `node_bounds`, Q is normalised at each node by that node's own range, at least
    `span_floor` wide (see SearchSettings.node_bounds), instead of the tree's.
    """
    for b in range(tree.children.shape[0]):
        low = tree.min_q[b]
        inverse_span = 1.0 / (tree.max_q[b] - low) if tree.max_q[b] > low else 0.0
        node = ROOT
        while True:
            if node_bounds:
                low, inverse_span = node_range(tree, b, node, span_floor)
            action = _best_action(tree, b, node, low, inverse_span, reciprocal, rule, pb_c_init,
                                  pb_c_base)
            child = tree.children[b, node, action]
            if child == UNEXPANDED:
                break
            node = child
        out_parent[b] = node
        out_action[b] = action


@njit(cache=True, nogil=True)
def expand_and_backup(tree, returns, new_node, parent_node, action, leaf_reward, leaf_value,
                      leaf_to_play, policy_logits, discount):
    """Create node `new_node` under (parent_node[b], action[b]) in every tree and back up.

    leaf_reward [B, P], leaf_value [B, P], leaf_to_play [B] int32, policy_logits [B, A] come from
    one recurrent inference; returns [B, P] float64 is scratch space. Every player's return is
    backed up; min-max statistics record each Q from the viewpoint of the player who chooses that
    edge, which is also what the edge rows (edge_visits, edge_q) cache for selection.
    """
    children, edge_visits, edge_q = tree.children, tree.edge_visits, tree.edge_q
    visit_count, value_sum, reward, parent = (tree.visit_count, tree.value_sum, tree.reward,
                                              tree.parent)
    action_from_parent, min_q, max_q = tree.action_from_parent, tree.min_q, tree.max_q
    num_players = value_sum.shape[2]
    for b in range(children.shape[0]):
        player = leaf_to_play[b]
        if player < 0 or player >= num_players:
            raise ValueError("leaf to_play is out of range [0, num_players)")
        above = parent_node[b]
        children[b, above, action[b]] = new_node
        parent[b, new_node] = above
        action_from_parent[b, new_node] = action[b]
        tree.to_play[b, new_node] = player
        visit_count[b, new_node] = 0
        for a in range(children.shape[2]):
            children[b, new_node, a] = UNEXPANDED
            edge_visits[b, new_node, a] = 0
            edge_q[b, new_node, a] = 0.0
        _write_softmax(policy_logits[b], tree.prior[b, new_node], None)
        for p in range(num_players):
            reward[b, new_node, p] = leaf_reward[b, p]
            value_sum[b, new_node, p] = 0.0
            tree.node_value[b, new_node, p] = leaf_value[b, p]
            returns[b, p] = leaf_value[b, p]
        node = new_node
        while node != NO_PARENT:
            for p in range(num_players):
                value_sum[b, node, p] += returns[b, p]
                returns[b, p] = reward[b, node, p] + discount * returns[b, p]
            visit_count[b, node] += 1
            above = parent[b, node]
            if above != NO_PARENT:
                q = _q_value(tree, b, node, tree.to_play[b, above], discount)
                edge_visits[b, above, action_from_parent[b, node]] = visit_count[b, node]
                edge_q[b, above, action_from_parent[b, node]] = q
                min_q[b] = min(min_q[b], q)
                max_q[b] = max(max_q[b], q)
            node = above


@njit(cache=True, nogil=True)
def root_statistics(tree, out_policy, out_value):
    """out_policy [B, A]: root visit shares; out_value [B, P]: mean backed-up root return."""
    edge_visits, visit_count, value_sum = tree.edge_visits, tree.visit_count, tree.value_sum
    for b in range(edge_visits.shape[0]):
        total = 0
        for a in range(edge_visits.shape[2]):
            total += edge_visits[b, ROOT, a]
        for a in range(edge_visits.shape[2]):
            out_policy[b, a] = edge_visits[b, ROOT, a] / total
        for p in range(value_sum.shape[2]):
            out_value[b, p] = value_sum[b, ROOT, p] / visit_count[b, ROOT]


@njit(cache=True, nogil=True)
def choose_actions(tree, move_number, freezing_moves, temperature, uniforms, out_action):
    """Sample ∝ N^(1/temperature) while move_number[b] < freezing_moves, else the most visited.

    uniforms [B] are U(0, 1) draws from the caller's seeded generator; ties go to the lowest index.
    """
    for b in range(tree.edge_visits.shape[0]):
        counts = tree.edge_visits[b, ROOT]
        most = 0
        best = NO_ACTION
        for a in range(counts.shape[0]):
            if counts[a] > most:
                most = counts[a]
                best = a
        out_action[b] = best
        if move_number[b] >= freezing_moves:
            continue
        total = 0.0
        for a in range(counts.shape[0]):
            if counts[a] > 0:
                total += (counts[a] / most) ** (1.0 / temperature)
        threshold = uniforms[b] * total
        cumulative = 0.0
        for a in range(counts.shape[0]):
            if counts[a] > 0:
                cumulative += (counts[a] / most) ** (1.0 / temperature)
                if threshold < cumulative:
                    out_action[b] = a
                    break
