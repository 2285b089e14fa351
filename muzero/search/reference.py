"""The same search in plain Python, one node object at a time, written to be read.

It is the specification the Numba kernels are tested against (same decisions, same floating-point
operations in the same order) and the baseline their speed is measured against.
"""

from __future__ import annotations

import math

import numpy as np

from muzero.search.batched import SearchTree
from muzero.search.gumbel import LOW_LOGIT
from muzero.search.tree import RULE_UCB, SearchSettings, halving_schedule


def softmax(logits: list[float]) -> list[float]:
    top = max(logits)
    exps = [math.exp(x - top) for x in logits]
    total = 0.0
    for e in exps:
        total += e
    return [e * (1.0 / total) for e in exps]


class Node:
    def __init__(self, index: int, to_play: int, reward: list[float], priors: dict[int, float],
                 parent: Node | None, value: list[float]):
        self.index = index  # numbering of tree.py: root 0, the node made at simulation i is i + 1
        self.to_play = to_play
        self.reward = reward  # every player's reward on the edge into this node
        self.priors = priors  # action -> prior, legal actions only
        self.parent = parent
        self.children: dict[int, Node] = {}
        self.visit_count = 0
        self.value_sum = [0.0] * len(reward)
        self.value = value  # the network's value of this node, every player's

    def q(self, player: int, discount: float) -> float:
        """Reward into this node plus the discounted mean return, for `player`."""
        return self.reward[player] + discount * (self.value_sum[player] / self.visit_count)


class MinMax:
    def __init__(self, low: float = math.inf, high: float = -math.inf):
        self.low, self.high = low, high

    def update(self, q: float) -> None:
        self.low, self.high = min(self.low, q), max(self.high, q)

    def normalise(self, q: float) -> float:
        """Map Q into [0, 1] once the tree has seen two different values (multiplying by the
        reciprocal of the range, as the kernel does)."""
        return (q - self.low) * (1.0 / (self.high - self.low)) if self.high > self.low else q

    def normalise_or_half(self, q: float) -> float:
        """Gumbel's normalisation: as `normalise`, but 0.5 for every Q while there is no range."""
        return (q - self.low) * (1.0 / (self.high - self.low)) if self.high > self.low else 0.5


class NodeRange:
    """Node bounds (SearchSettings.node_bounds): the range of a node's mean value and its
    visited children's Q for the player who moves there, at least `span_floor` wide."""

    def __init__(self, node: Node, discount: float, span_floor: float):
        player = node.to_play
        values = [node.value_sum[player] / node.visit_count]
        values += [child.q(player, discount) for child in node.children.values()]
        self.low = min(values)
        self.inverse_span = 1.0 / max(max(values) - self.low, span_floor)

    def normalise(self, q: float) -> float:
        return (q - self.low) * self.inverse_span

    def normalise_or_half(self, q: float) -> float:
        """Gumbel's normalisation: the span's floor gives every node a range, so never a half."""
        return self.normalise(q)


class ReferenceTree(SearchTree):
    """Plain-Python implementation of `SearchTree`."""

    def __init__(self, batch_size: int, num_actions: int, num_players: int,
                 settings: SearchSettings):
        super().__init__(batch_size, num_actions, num_players, settings)
        self.roots: list[Node] = []
        self.stats: list[MinMax] = []
        self.gumbel: list[list[float]] = []  # the root's Gumbel draws per tree
        self._pending: list[tuple[Node, int]] = []

    def head(self, rows: int) -> ReferenceTree:
        if not 1 <= rows <= self.batch_size:
            raise ValueError(f"rows must be in [1, {self.batch_size}], got {rows}")
        return ReferenceTree(rows, self.num_actions, self.num_players, self.settings)

    def _expand_roots(self, legal, to_play, value, policy_logits, noise, fraction):
        self.roots, self.stats = [], []
        self.gumbel = [[float(g) for g in row] for row in noise]
        for b in range(self.batch_size):
            actions = [a for a in range(self.num_actions) if legal[b, a]]
            priors = dict(zip(actions, softmax([float(policy_logits[b, a]) for a in actions])))
            if fraction > 0.0:
                noise_total = 0.0
                for a in actions:
                    noise_total += noise[b, a]
                for a in actions:
                    share = noise[b, a] / noise_total
                    priors[a] = (1.0 - fraction) * priors[a] + fraction * share
            root = Node(0, int(to_play[b]), [0.0] * self.num_players, priors, None,
                        [float(v) for v in value[b]])
            root.visit_count = 1
            root.value_sum = [float(v) for v in value[b]]
            self.roots.append(root)
            self.stats.append(MinMax(*self.settings.initial_bounds()))

    def _score(self, node: Node, action: int, stats: MinMax | NodeRange) -> float:
        s = self.settings
        parent_visits = float(node.visit_count)
        if s.rule == RULE_UCB:
            scale = math.sqrt(2.0 * parent_visits)
        else:
            scale = math.sqrt(parent_visits) * (
                s.pb_c_init + math.log((parent_visits + s.pb_c_base + 1.0) / s.pb_c_base))
        child = node.children.get(action)
        q, child_visits = 0.0, 0
        if child is not None:
            child_visits = child.visit_count
            q = stats.normalise(child.q(node.to_play, s.discount))
        return q + node.priors[action] * scale * (1.0 / (1.0 + child_visits))

    def _bounds(self, b: int, node: Node) -> MinMax | NodeRange:
        """What normalises Q at `node` of tree `b`: its own range with node bounds, else the
        tree's."""
        if self.settings.node_bounds:
            return NodeRange(node, self.settings.discount, self.settings.node_span_floor)
        return self.stats[b]

    def _improved_logits(self, node: Node,
                         stats: MinMax | NodeRange) -> tuple[dict[int, float], int]:
        """Gumbel MuZero: log prior + sigma(completed Q) of each action (see gumbel.py), and the
        node's total edge visits."""
        s, player = self.settings, node.to_play
        total, most, visited_prior, weighted_q = 0, 0, 0.0, 0.0
        for a in sorted(node.priors):
            child = node.children.get(a)
            if child is not None:
                total += child.visit_count
                most = max(most, child.visit_count)
                visited_prior += node.priors[a]
                weighted_q += node.priors[a] * child.q(player, s.discount)
        v_mix = node.value[player]
        if total > 0 and visited_prior > 0.0:
            v_mix = (v_mix + total * (weighted_q / visited_prior)) / (1.0 + total)
        scale = (s.c_visit + most) * s.c_scale
        improved = {}
        for a in sorted(node.priors):
            child = node.children.get(a)
            q = child.q(player, s.discount) if child is not None else v_mix
            p = node.priors[a]
            improved[a] = ((math.log(p) if p > 0.0 else LOW_LOGIT)
                           + scale * stats.normalise_or_half(q))
        return improved, total

    def _best_root_action(self, b: int, improved: dict[int, float], visits: int) -> int:
        """Among root actions with exactly `visits` visits, the best by g + improved logit."""
        counts = self._root_counts(self.roots[b])
        candidates = [a for a in sorted(improved) if counts[a] == visits]
        return max(candidates, key=lambda a: (self.gumbel[b][a] + improved[a], -a))

    def _select_gumbel(self, b: int) -> tuple[Node, int]:
        root = self.roots[b]
        improved, simulation = self._improved_logits(root, self._bounds(b, root))
        considered = min(self.settings.considered_actions, len(root.priors))
        schedule = halving_schedule(considered, self.settings.num_simulations)
        node, action = root, self._best_root_action(b, improved, schedule[simulation])
        while action in node.children:
            node = node.children[action]
            improved, total = self._improved_logits(node, self._bounds(b, node))
            policy = dict(zip(improved, softmax(list(improved.values()))))
            scores = {a: policy[a] - (node.children[a].visit_count if a in node.children else 0)
                      * (1.0 / (1.0 + total)) for a in sorted(policy)}
            action = max(scores, key=lambda a: (scores[a], -a))
        return node, action

    def _select(self):
        self._pending = []
        for b, root in enumerate(self.roots):
            if self.settings.gumbel:
                self._pending.append(self._select_gumbel(b))
                continue
            node = root
            while True:
                bounds = self._bounds(b, node)
                scores = {a: self._score(node, a, bounds) for a in sorted(node.priors)}
                action = max(scores, key=lambda a: (scores[a], -a))
                if action not in node.children:
                    break
                node = node.children[action]
            self._pending.append((node, action))
        return (np.array([node.index for node, _ in self._pending], dtype=np.int32),
                np.array([action for _, action in self._pending], dtype=np.int32))

    def _expand_and_backup(self, reward, value, to_play, policy_logits):
        for b, ((parent, action), stats) in enumerate(zip(self._pending, self.stats)):
            priors = dict(enumerate(softmax([float(x) for x in policy_logits[b]])))
            leaf = Node(self.simulation + 1, int(to_play[b]), [float(r) for r in reward[b]],
                        priors, parent, [float(v) for v in value[b]])
            parent.children[action] = leaf
            for p in range(self.num_players):
                node, g = leaf, float(value[b, p])
                while node is not None:
                    node.value_sum[p] += g
                    g = node.reward[p] + self.settings.discount * g
                    node = node.parent
            node = leaf
            while node is not None:
                node.visit_count += 1
                if node.parent is not None:
                    stats.update(node.q(node.parent.to_play, self.settings.discount))
                node = node.parent

    def _root_counts(self, root: Node) -> list[int]:
        return [root.children[a].visit_count if a in root.children else 0
                for a in range(self.num_actions)]

    def root_policy(self) -> np.ndarray:
        policy = np.zeros((self.batch_size, self.num_actions), dtype=np.float32)
        for b, root in enumerate(self.roots):
            if self.settings.gumbel:
                improved, _ = self._improved_logits(root, self._bounds(b, root))
                for a, share in zip(improved, softmax(list(improved.values()))):
                    policy[b, a] = share
                continue
            counts = self._root_counts(root)
            total = sum(counts)
            policy[b] = [c / total for c in counts]
        return policy

    def root_values(self) -> np.ndarray:
        return np.array([[v / root.visit_count for v in root.value_sum] for root in self.roots],
                        dtype=np.float32)

    def _choose_actions(self, move_number, uniforms):
        s = self.settings
        actions = np.zeros(self.batch_size, dtype=np.int32)
        for b, root in enumerate(self.roots):
            counts = self._root_counts(root)
            most = max(counts)
            if s.gumbel:
                improved, _ = self._improved_logits(root, self._bounds(b, root))
                actions[b] = self._best_root_action(b, improved, most)
                continue
            best = counts.index(most)
            if move_number[b] >= s.freezing_moves:
                actions[b] = best
                continue
            weights = [(c / most) ** (1.0 / s.temperature) if c > 0 else 0.0 for c in counts]
            threshold, cumulative = uniforms[b] * sum(weights), 0.0
            actions[b] = best
            for a, w in enumerate(weights):
                if w > 0.0:
                    cumulative += w
                    if threshold < cumulative:
                        actions[b] = a
                        break
        return actions
