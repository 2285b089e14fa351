"""Gumbel MuZero search: the Numba kernels against the plain-Python reference, the halving
schedule, and small trees checked by hand."""

import dataclasses
import math

import numpy as np
import pytest
from search_models import TicTacToeOracle
from test_search import random_inputs, run_tree, search_both, settings, tictactoe_batch

from muzero.search import MCTS, NumbaTree, ReferenceTree
from muzero.search.model import InitialOutput, RecurrentOutput
from muzero.search.tree import NODE_SPAN_FLOOR, halving_schedule, halving_table


def gumbel_settings(num_simulations=10, considered=16, noise=True, **options):
    return dataclasses.replace(settings(num_simulations, **options), gumbel=True,
                               gumbel_noise=noise, considered_actions=considered)


@pytest.mark.parametrize("m, n, expected", [
    (1, 5, [0, 1, 2, 3, 4]),
    # one phase: 2 actions, 3 visits each
    (2, 6, [0, 0, 1, 1, 2, 2]),
    (2, 7, [0, 0, 1, 1, 2, 2, 3]),
    # two phases of 8 simulations: 4 actions once each, 2 more each... then the last two
    (4, 16, [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]),
    # 3 actions: ceil(log2 3) = 2 phases; 10 // 6 = 1 round, then 2 actions, 10 // 4 = 2 rounds
    (3, 10, [0, 0, 0, 1, 1, 2, 2, 3, 3, 4]),
    # fewer simulations than actions: some are never visited
    (16, 5, [0, 0, 0, 0, 0]),
])
def test_halving_schedule_by_hand(m, n, expected):
    assert halving_schedule(m, n) == expected


@pytest.mark.parametrize("m", [2, 3, 5, 8, 16])
def test_halving_gives_each_phase_its_share_and_keeps_half(m):
    """The paper's m=16, n=50: 16 x 1, 8 x 1, 4 x 3, 2 x 6 visits, then the two again."""
    schedule = halving_schedule(m, 50)
    assert len(schedule) == 50
    visits = [0] * m
    for target in schedule:  # the kernels' rule: take an action with exactly `target` visits
        visits[visits.index(target)] += 1  # the best-scoring candidate; here the first
    assert sorted(visits, reverse=True)[:2][1] >= max(visits) - 1  # two finalists, level
    assert sum(visits) == 50
    if m == 16:
        assert halving_schedule(16, 50)[:24] == [0] * 16 + [1] * 8
        assert halving_schedule(16, 50)[24:36] == [2] * 4 + [3] * 4 + [4] * 4
    table = halving_table(m, 50)
    assert table[m].tolist() == schedule and table.shape == (m + 1, 50)


# node: None for the tree's range, else node bounds at least this wide (0.7 binds at some nodes)
GUMBEL_CASES = [(seed, batch, players, actions, considered, discount, bounds, node)
                for seed, (batch, players, actions, considered) in enumerate(
                    [(1, 1, 2, 16), (3, 2, 9, 4), (8, 3, 5, 16), (8, 2, 9, 16), (5, 1, 7, 3),
                     (2, 3, 2, 1), (8, 1, 9, 8)])
                for discount, bounds, node in (
                    (1.0, (0.0, 0.0), None), (0.9, (0.0, 0.0), None),
                    (1.0, (-1.0, 1.0), None), (1.0, (0.0, 0.0), NODE_SPAN_FLOOR),
                    (0.9, (0.0, 0.0), NODE_SPAN_FLOOR),
                    (1.0, (0.0, 0.0), 0.7))]


@pytest.mark.parametrize(
    "seed, batch, players, actions, considered, discount, bounds, node", GUMBEL_CASES)
def test_gumbel_numba_matches_reference_on_random_trees(seed, batch, players, actions,
                                                        considered, discount, bounds, node):
    rng = np.random.default_rng(seed)
    simulations = 40
    root, steps = random_inputs(rng, batch, actions, players, simulations)
    root["noise"] = rng.gumbel(size=(batch, actions))
    s = dataclasses.replace(gumbel_settings(simulations, considered, discount=discount,
                                            bounds=bounds, node_bounds=node is not None),
                            node_span_floor=node or NODE_SPAN_FLOOR)
    fast, slow = search_both(s, batch, actions, players, root, steps)
    no_moves = np.zeros(batch, np.int32)
    chosen = fast.choose_actions(no_moves, rng.random(batch))
    np.testing.assert_array_equal(chosen, slow.choose_actions(no_moves, rng.random(batch)))
    assert root["legal"][np.arange(batch), chosen].all()
    # the root's visits follow the halving schedule of min(m, legal) actions
    counts = fast.arrays.edge_visits[:, 0]
    for b in range(batch):
        m = min(considered, int(root["legal"][b].sum()))
        expected = [0] * m
        for target in halving_schedule(m, simulations):
            expected[expected.index(target)] += 1
        assert sorted(counts[b][counts[b] > 0].tolist()) == sorted(v for v in expected if v)


def one_root(tree, logits, value=0.0, noise=None, legal=None):
    actions = len(logits)
    tree.expand_roots(np.array([legal or [True] * actions]), np.array([0], np.int32),
                      np.array([[value]], np.float32), np.array([logits], np.float32),
                      None if noise is None else np.array([noise], np.float64))


def leaf(tree, reward, value, actions):
    tree.expand_and_backup(np.array([[reward]], np.float32), np.array([[value]], np.float32),
                           np.zeros(1, np.int32), np.zeros((1, actions), np.float32))


@pytest.mark.parametrize("cls", [NumbaTree, ReferenceTree])
def test_hand_checked_root_halving_completed_q_and_sigma(cls):
    """Three actions, m = 2, four simulations, single player, known bounds [0, 1]."""
    s = gumbel_settings(4, considered=2, bounds=(0.0, 1.0))
    tree = cls(1, 3, 1, s)
    logits = [math.log(0.5), math.log(0.3), math.log(0.2)]
    # g + logits: a0 = -0.693, a1 = -1.204 + 1.0 = -0.204, a2 = -1.609 + 2.0 = 0.391:
    # Gumbel-top-2 keeps a2 and a1; the schedule of m = 2, n = 4 is [0, 0, 1, 1].
    one_root(tree, logits, value=0.4, noise=[0.0, 1.0, 2.0])
    picks = []
    for q in (0.9, 0.1, 0.8, 0.2):  # each leaf: reward 0, value q, so Q = q (known bounds)
        parents, actions = tree.select()
        picks.append((int(parents[0]), int(actions[0])))
        leaf(tree, 0.0, q, 3)
    # sim 0: nothing visited, completed Q = v = 0.4 for every action (sigma the same): the best
    #        g + logit is a2 (0.391 > -0.204 > -0.693). Q(a2) = 0.9.
    # sim 1: target 0 again: a1 beats a0 (v_mix = (0.4 + 1 * 0.9) / 2 for both). Q(a1) = 0.1.
    #        Gumbel-top-2 has kept a2 and a1.
    # sim 2: target 1: a2 scores 0.391 + 51 * 0.9 > a1's -0.204 + 51 * 0.1; a2's child (node 1)
    #        is expanded, so the descent continues: uniform priors, nothing visited there, pi'
    #        uniform, every score 1/3 - 0: the tie goes to action 0.
    # sim 3: a1 is the only action left with 1 visit: down to node 2, action 0 likewise.
    assert picks == [(0, 2), (0, 1), (1, 0), (2, 0)]
    # Root: Q(a2) = (0.9 + 0.8) / 2, Q(a1) = (0.1 + 0.2) / 2, a0 unvisited: v_mix =
    # (0.4 + 4 * (0.3 * 0.15 + 0.2 * 0.85) / 0.5) / 5 = 0.424; sigma = (50 + 2) * q.
    completed = np.array([0.424, 0.15, 0.85])
    improved = np.log([0.5, 0.3, 0.2]) + 52 * completed
    expected = np.exp(improved - improved.max()) / np.exp(improved - improved.max()).sum()
    np.testing.assert_allclose(tree.root_policy()[0], expected, rtol=1e-5, atol=1e-12)
    np.testing.assert_allclose(tree.root_values(), [[(0.4 + 0.9 + 0.1 + 0.8 + 0.2) / 5]],
                               rtol=1e-6)
    # the move: among the survivors (2 visits each), a2 has the best g + logits + sigma
    assert tree.choose_actions(np.zeros(1, np.int32), np.zeros(1)).tolist() == [2]


@pytest.mark.parametrize("cls", [NumbaTree, ReferenceTree])
def test_completed_q_uses_v_mix_and_sigma_grows_with_visits(cls):
    """Two actions, one simulation on a1 with Q = 1 in a tree whose range is [0, 1]: a0's
    completed Q is v_mix = (v + 1 * Q(a1)) / 2 (prior weights cancel with one visited action)."""
    tree = cls(1, 2, 1, gumbel_settings(1, considered=2, bounds=(0.0, 1.0)))
    one_root(tree, [0.0, 0.0], value=0.2, noise=[0.0, 5.0])
    tree.select()
    leaf(tree, 0.0, 1.0, 2)
    v_mix = (0.2 + 1.0) / 2
    improved = np.log([0.5, 0.5]) + (50 + 1) * np.array([v_mix, 1.0])
    expected = np.exp(improved - improved.max()) / np.exp(improved - improved.max()).sum()
    np.testing.assert_allclose(tree.root_policy()[0], expected, rtol=1e-6)


@pytest.mark.parametrize("cls", [NumbaTree, ReferenceTree])
def test_node_bounds_keep_the_gap_between_sibling_moves_that_depth_dilutes(cls):
    """Two actions, m = 2, four simulations, c_scale 0.1, values that shrink by 0.5 a move (as
    the bandit's). Every simulation pays 0.5; leaf values: a1 9.6 then 9.0 below it, a0 9.5 then
    9.0 below it. The same picks either way: [0, 0, 1, 1] visits by the halving schedule, a1
    first (its Gumbel draw), then down each child to its action 0 (uniform priors, a tie).
    At the end Q(a1) = 0.5 + (9.6 + 9.5) / 2 = 10.05 and Q(a0) = 0.5 + (9.5 + 9.5) / 2 = 10.0.
    The tree's range [9.5, 10.1] holds the deeper Q of 9.5: the siblings normalise to 0.917 and
    0.833. The root's own range (its mean 50.1 / 5 = 10.02 and its children's Q) is [10.0,
    10.05]: 1 and 0; with a span floor of 1, 0.05 and 0. sigma scales by (50 + 2) * 0.1 = 5.2."""
    def search(node_bounds, span_floor=NODE_SPAN_FLOOR):
        s = dataclasses.replace(gumbel_settings(4, considered=2, node_bounds=node_bounds),
                                c_scale=0.1, node_span_floor=span_floor)
        tree = cls(1, 2, 1, s)
        one_root(tree, [0.0, 0.0], value=10.0, noise=[0.0, 1.0])
        picks = []
        for value in (9.6, 9.5, 9.0, 9.0):
            parents, actions = tree.select()
            picks.append((int(parents[0]), int(actions[0])))
            leaf(tree, 0.5, value, 2)
        return picks, tree.root_policy()[0]

    policies = {}
    for node_bounds, span_floor, normalised in (
            (False, NODE_SPAN_FLOOR, [(10.0 - 9.5) / 0.6, (10.05 - 9.5) / 0.6]),
            (True, NODE_SPAN_FLOOR, [0.0, 1.0]),
            (True, 1.0, [0.0, 0.05])):
        picks, policies[node_bounds, span_floor] = search(node_bounds, span_floor)
        assert picks == [(0, 1), (0, 0), (1, 0), (2, 0)]
        improved = np.log([0.5, 0.5]) + 5.2 * np.array(normalised)
        expected = np.exp(improved - improved.max()) / np.exp(improved - improved.max()).sum()
        np.testing.assert_allclose(policies[node_bounds, span_floor], expected, rtol=1e-4)
    # the improved policy's share of the better move: 0.61 by the tree's range, 0.99 by the
    # node's, 0.56 by the node's at least 1 wide
    assert policies[False, NODE_SPAN_FLOOR][1] == pytest.approx(0.607, abs=1e-3)
    assert policies[True, NODE_SPAN_FLOOR][1] == pytest.approx(0.9945, abs=1e-4)
    assert policies[True, 1.0][1] == pytest.approx(0.5646, abs=1e-4)


def test_without_noise_the_move_is_deterministic_and_needs_no_uniforms():
    rng = np.random.default_rng(3)
    moves = []
    for uniforms in (np.zeros(4), np.full(4, 0.999)):
        root, steps = random_inputs(np.random.default_rng(5), 4, 6, 2, 20)
        root["noise"] = None
        tree = NumbaTree(4, 6, 2, gumbel_settings(20, noise=False))
        run_tree(tree, root, steps)
        moves.append(tree.choose_actions(rng.integers(0, 9, 4).astype(np.int32), uniforms))
    np.testing.assert_array_equal(moves[0], moves[1])


class FlatModel:
    """Every state alike: uniform policy, value and reward 0, one player, four actions."""

    def initial_inference(self, observations):
        batch = len(observations)
        return InitialOutput(np.zeros((batch, 2), np.float32), np.zeros((batch, 1), np.float32),
                             np.zeros((batch, 4), np.float32))

    def recurrent_inference(self, hidden, actions):
        batch = len(hidden)
        zeros = np.zeros((batch, 1), np.float32)
        return RecurrentOutput(hidden, zeros, zeros, np.zeros(batch, np.int32),
                               np.zeros((batch, 4), np.float32))


def test_gumbel_noise_spreads_self_play_moves_over_the_considered_actions():
    """With flat logits and a model that values nothing, the chosen move is the root action with
    the largest Gumbel draw: uniform over the legal actions."""
    model = FlatModel()
    tree = NumbaTree(256, 4, 1, gumbel_settings(8, considered=4))
    search = MCTS(tree, np.random.default_rng(0))
    observations = np.zeros((256, 3), np.float32)
    result = search.run(model, observations, np.ones((256, 4), bool), np.zeros(256, np.int32),
                        np.zeros(256, np.int32))
    counts = np.bincount(result.actions, minlength=4)
    assert counts.min() > 256 / 4 * 0.6, counts
    np.testing.assert_allclose(result.policy.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("tree_class", [NumbaTree, ReferenceTree])
@pytest.mark.parametrize("perfect_values, simulations", [(True, 16), (False, 200)])
def test_gumbel_oracle_search_wins_and_blocks(tree_class, perfect_values, simulations):
    """The positions of test_search's oracle test, searched deterministically (evaluation)."""
    positions = [[0, 3, 1, 4], [0, 4, 1], [4, 0, 8, 2], [0, 4, 8, 2]]
    observations, legal, to_play = tictactoe_batch(positions)
    tree = tree_class(len(positions), 9, 2, gumbel_settings(simulations, noise=False))
    result = MCTS(tree, np.random.default_rng(0)).run(
        TicTacToeOracle(perfect_values), observations, legal, to_play, np.zeros(4, np.int32))
    assert result.actions.tolist() == [2, 2, 1, 6]
    if perfect_values:  # every Q exact: the policy target agrees. (Without them an action
        # dropped early keeps the Q of one shallow visit, 0, and can outscore a block whose
        # deeper search found some losses: sigma magnifies small Q differences.)
        assert result.policy[np.arange(4), [2, 2, 1, 6]].min() > 0.5
