import math

import numpy as np
import pytest
from search_models import RandomModel, TicTacToeOracle

from games.tictactoe import TicTacToe
from muzero.search import MCTS, NumbaTree, ReferenceTree, SearchSettings
from muzero.search.tree import NODE_SPAN_FLOOR, RULE_PUCT, RULE_UCB


def settings(num_simulations=10, rule=RULE_UCB, discount=1.0, fraction=0.0, freezing_moves=0,
             temperature=1.0, alpha=0.3, bounds=(0.0, 0.0), node_bounds=False,
             span_floor=NODE_SPAN_FLOOR):
    return SearchSettings(num_simulations=num_simulations, discount=discount, rule=rule,
                          pb_c_init=1.25, pb_c_base=19652.0, dirichlet_alpha=alpha,
                          exploration_fraction=fraction, freezing_moves=freezing_moves,
                          temperature=temperature, known_value_min=bounds[0],
                          known_value_max=bounds[1], node_bounds=node_bounds,
                          node_span_floor=span_floor)


def random_inputs(rng, batch, actions, players, simulations):
    legal = rng.random((batch, actions)) < 0.7
    legal[np.arange(batch), rng.integers(0, actions, batch)] = True
    root = dict(legal=legal, to_play=rng.integers(0, players, batch).astype(np.int32),
                value=rng.normal(size=(batch, players)).astype(np.float32),
                policy_logits=rng.normal(size=(batch, actions)).astype(np.float32),
                noise=rng.gamma(0.3, size=(batch, actions)))
    steps = [dict(reward=rng.normal(size=(batch, players)).astype(np.float32),
                  value=rng.normal(size=(batch, players)).astype(np.float32),
                  to_play=rng.integers(0, players, batch).astype(np.int32),
                  policy_logits=(2 * rng.normal(size=(batch, actions))).astype(np.float32))
             for _ in range(simulations)]
    return root, steps


def run_tree(tree, root, steps):
    tree.expand_roots(**root)
    selections = []
    for step in steps:
        parents, actions = tree.select()
        selections.append((parents.copy(), actions.copy()))
        tree.expand_and_backup(**step)
    return selections


def search_both(s, batch, actions, players, root, steps):
    """Search the same inputs with the kernels and the reference; assert the same selections,
    bit-identical policy targets and values, and a proper policy; return (fast, slow)."""
    fast = NumbaTree(batch, actions, players, s)
    slow = ReferenceTree(batch, actions, players, s)
    for fast_sel, slow_sel in zip(run_tree(fast, root, steps), run_tree(slow, root, steps)):
        np.testing.assert_array_equal(fast_sel[0], slow_sel[0])
        np.testing.assert_array_equal(fast_sel[1], slow_sel[1])
    np.testing.assert_array_equal(fast.root_policy(), slow.root_policy())
    np.testing.assert_array_equal(fast.root_values(), slow.root_values())
    assert (fast.root_policy()[~root["legal"]] == 0).all()
    np.testing.assert_allclose(fast.root_policy().sum(axis=1), 1.0, rtol=1e-6)
    return fast, slow


# node: None for the tree's range, else node bounds at least this wide (random values are
# about 1 apart, so a floor of 0.7 binds at some nodes and not at others)
CASES = [(seed, batch, players, actions, rule, discount, fraction, bounds, node)
         for seed, (batch, players, actions) in enumerate(
             [(1, 1, 2), (3, 2, 9), (8, 3, 5), (8, 2, 9), (5, 1, 7), (2, 3, 2), (8, 1, 9)])
         for rule in (RULE_UCB, RULE_PUCT)
         for discount, fraction, bounds, node in (
             (1.0, 0.0, (0.0, 0.0), None), (0.9, 0.25, (0.0, 0.0), None),
             (1.0, 0.0, (-1.0, 1.0), None), (0.9, 0.25, (0.0, 0.0), NODE_SPAN_FLOOR),
             (1.0, 0.25, (0.0, 0.0), 0.7))]


@pytest.mark.parametrize(
    "seed, batch, players, actions, rule, discount, fraction, bounds, node", CASES)
def test_numba_matches_reference_on_random_trees(seed, batch, players, actions, rule, discount,
                                                 fraction, bounds, node):
    rng = np.random.default_rng(seed)
    simulations = 40
    root, steps = random_inputs(rng, batch, actions, players, simulations)
    s = settings(simulations, rule, discount, fraction, freezing_moves=2, bounds=bounds,
                 node_bounds=node is not None, span_floor=node or NODE_SPAN_FLOOR)
    fast, slow = search_both(s, batch, actions, players, root, steps)
    for move in (0, 5):
        move_number = np.full(batch, move, np.int32)
        uniforms = rng.random(batch)
        np.testing.assert_array_equal(fast.choose_actions(move_number, uniforms),
                                      slow.choose_actions(move_number, uniforms))


def test_hand_checked_two_actions_three_simulations():
    """Worked by hand with the simplified UCB rule (see the comments for each simulation)."""
    tree = NumbaTree(1, 2, 1, settings(num_simulations=3))
    tree.expand_roots(np.array([[True, True]]), np.array([0], np.int32),
                      np.array([[0.0]], np.float32), np.zeros((1, 2), np.float32))
    outputs = [(1.0, 0.5), (0.0, -3.0), (0.25, 1.0)]  # (reward, value) of each new leaf
    selected = []
    for reward, value in outputs:
        parents, actions = tree.select()
        selected.append((int(parents[0]), int(actions[0])))
        tree.expand_and_backup(np.array([[reward]], np.float32), np.array([[value]], np.float32),
                               np.zeros(1, np.int32), np.zeros((1, 2), np.float32))
    # 1: root N=1, priors .5/.5, all Q=0 -> tie -> action 0; node 1 gets Q = 1 + 0.5 = 1.5.
    # 2: root N=2: a0 = 1.5 (no range yet, raw) + .5*2/2 = 2.0 > a1 = .5*2 = 1.0 -> node 1;
    #    there N=1, both children unexpanded -> tie -> action 0. Leaf Q = -3, range [-3, 1.5];
    #    node 1 holds 0.5 - 3 = -2.5 over 2 visits -> Q = 1 - 1.25 = -0.25; root sum -0.5.
    # 3: root N=3: a0 = (-0.25 + 3) / 4.5 + .5*sqrt(6)/3 = 1.0194 < a1 = .5*sqrt(6) = 1.2247.
    assert selected == [(0, 0), (1, 0), (0, 1)]
    np.testing.assert_allclose(tree.root_policy(), [[2 / 3, 1 / 3]], rtol=1e-6)
    # root sum: -0.5 + (0.25 + 1.0) = 0.75 over 4 visits (its own evaluation counts as one)
    np.testing.assert_allclose(tree.root_values(), [[0.1875]], rtol=1e-6)
    arrays = tree.arrays
    assert arrays.visit_count[0, :4].tolist() == [4, 2, 1, 1]
    assert (arrays.min_q[0], arrays.max_q[0]) == (-3.0, 1.5)


@pytest.mark.parametrize("cls", [NumbaTree, ReferenceTree])
def test_node_bounds_normalise_q_by_the_node_own_range(cls):
    """One player, root value 10, leaves worth 0.5 now plus 9 or 9.2 later: what separates the
    moves is 0.2 in about 10.
    1: root N=1, its range is its value alone -> every Q normalises to 0 -> tie -> a0; Q(a0) =
       9.5, root mean (10 + 9.5) / 2 = 9.75.
    2: root range [9.5, 9.75]: a0 = 0 + .5*2/2 = 0.5 < a1 (unvisited, 0) + .5*2 = 1.0 -> a1;
       Q(a1) = 9.7, root mean 29.2 / 3.
    3: root range [9.5, 9.7333]: a0 = 0 + .5*sqrt(6)/2 = 0.612 < a1 = 0.2 / 0.2333 + 0.612 =
       1.47 -> node 2, a fresh node -> tie -> its a0.
    The tree's own range after simulation 1 is the one Q 9.5, used raw: a0 = 9.5 + 0.5 beats
    a1 = 1.0 and the second simulation goes deeper under a0 instead."""
    def three_simulations(node_bounds):
        tree = cls(1, 2, 1, settings(num_simulations=3, node_bounds=node_bounds))
        tree.expand_roots(np.array([[True, True]]), np.array([0], np.int32),
                          np.array([[10.0]], np.float32), np.zeros((1, 2), np.float32))
        selected = []
        for value in (9.0, 9.2, 1.0):
            parents, actions = tree.select()
            selected.append((int(parents[0]), int(actions[0])))
            tree.expand_and_backup(np.array([[0.5]], np.float32), np.array([[value]], np.float32),
                                   np.zeros(1, np.int32), np.zeros((1, 2), np.float32))
        return selected

    assert three_simulations(node_bounds=True) == [(0, 0), (0, 1), (2, 0)]
    assert three_simulations(node_bounds=False)[1] == (1, 0)


def worse_move_visits(cls, gap, span_floor, simulations=50):
    """Root visits of move 0 when every line after move 1 is worth `gap` more (values 10 and
    10 + gap, no rewards), equal priors, node bounds at least `span_floor` wide."""
    tree = cls(1, 2, 1, settings(num_simulations=simulations, node_bounds=True,
                                 span_floor=span_floor))
    tree.expand_roots(np.array([[True, True]]), np.array([0], np.int32),
                      np.array([[10.0]], np.float32), np.zeros((1, 2), np.float32))
    first_move = {0: None}
    for simulation in range(simulations):
        parents, actions = tree.select()
        parent, action = int(parents[0]), int(actions[0])
        move = action if parent == 0 else first_move[parent]
        first_move[simulation + 1] = move
        tree.expand_and_backup(np.zeros((1, 1), np.float32),
                               np.array([[10.0 + gap * move]], np.float32),
                               np.zeros(1, np.int32), np.zeros((1, 2), np.float32))
    return int(round(tree.root_policy()[0, 0] * simulations))


@pytest.mark.parametrize("cls", [NumbaTree, ReferenceTree])
def test_a_span_floor_keeps_small_gaps_small(cls):
    """Scaled by their own range, two moves 0.01 apart look as far apart as two moves 1 apart,
    and the worse one gets the same few visits; with a span floor of 1 the small gap leaves
    the visits near the prior's even split, while a gap of 1 or more still decides."""
    no_floor = NODE_SPAN_FLOOR
    assert worse_move_visits(cls, 0.01, no_floor) == worse_move_visits(cls, 1.0, no_floor) <= 10
    assert worse_move_visits(cls, 0.01, 1.0) >= 20
    assert worse_move_visits(cls, 1.0, 1.0) == worse_move_visits(cls, 1.0, no_floor)
    assert worse_move_visits(cls, 2.0, 1.0) == worse_move_visits(cls, 2.0, no_floor)


@pytest.mark.parametrize("cls", [NumbaTree, ReferenceTree])
def test_known_bounds_normalise_q_until_values_leave_them(cls):
    """With known bounds [-2, 2], a leaf of Q = 0.2 is worth (0.2 + 2) / 4 = 0.55, not the raw
    0.2 that an empty range leaves it: the second simulation scores a0 = 0.55 + 0.5 = 1.05 >
    a1 = 1.0 and goes deeper, where without bounds a0 = 0.7 < 1.0 tries a1. A Q of -3 later
    widens the range to [-3, 2]."""
    def two_simulations(bounds, values):
        tree = cls(1, 2, 1, settings(num_simulations=3, bounds=bounds))
        tree.expand_roots(np.array([[True, True]]), np.array([0], np.int32),
                          np.array([[0.0]], np.float32), np.zeros((1, 2), np.float32))
        selected = []
        for value in values:
            parents, actions = tree.select()
            selected.append((int(parents[0]), int(actions[0])))
            tree.expand_and_backup(np.zeros((1, 1), np.float32),
                                   np.array([[value]], np.float32), np.zeros(1, np.int32),
                                   np.zeros((1, 2), np.float32))
        return tree, selected

    tree, selected = two_simulations((-2.0, 2.0), [0.2, -3.0])
    assert selected == [(0, 0), (1, 0)]
    assert two_simulations((0.0, 0.0), [0.2, -3.0])[1] == [(0, 0), (0, 1)]
    if cls is NumbaTree:
        assert (tree.arrays.min_q[0], tree.arrays.max_q[0]) == (-3.0, 2.0)


def test_puct_formula_matches_the_paper():
    """One expansion, then the pUCT score of each root edge written out."""
    tree = NumbaTree(1, 2, 1, settings(num_simulations=2, rule=RULE_PUCT))
    tree.expand_roots(np.array([[True, True]]), np.array([0], np.int32),
                      np.array([[0.0]], np.float32),
                      np.log(np.array([[0.3, 0.7]])).astype(np.float32))
    tree.select()
    tree.expand_and_backup(np.zeros((1, 1), np.float32), np.array([[0.2]], np.float32),
                           np.zeros(1, np.int32), np.zeros((1, 2), np.float32))
    # Root N=2; edge 1 visited once with Q=0.2 (raw: min == max); edge 0 unvisited.
    c = 1.25 + math.log((2 + 19652 + 1) / 19652)
    score_0 = 0.3 * math.sqrt(2) * c
    score_1 = 0.2 + 0.7 * math.sqrt(2) * c / 2
    parents, actions = tree.select()
    assert score_1 > score_0  # so the root descends into node 1 (edge 1) rather than edge 0
    assert (int(parents[0]), int(actions[0])) == (1, 0)
    # With a Q that outweighs less, edge 0 wins: the formula, not the order, decides.
    tree.expand_roots(np.array([[True, True]]), np.array([0], np.int32),
                      np.array([[0.0]], np.float32),
                      np.log(np.array([[0.3, 0.7]])).astype(np.float32))
    tree.select()
    tree.expand_and_backup(np.zeros((1, 1), np.float32), np.array([[-5.0]], np.float32),
                           np.zeros(1, np.int32), np.zeros((1, 2), np.float32))
    assert -5.0 + 0.7 * math.sqrt(2) * c / 2 < score_0
    parents, actions = tree.select()
    assert (int(parents[0]), int(actions[0])) == (0, 0)


def test_rows_are_independent():
    rng = np.random.default_rng(7)
    root, steps = random_inputs(rng, 4, 6, 2, 20)
    batched = NumbaTree(4, 6, 2, settings(20))
    run_tree(batched, root, steps)
    for b in range(4):
        single = NumbaTree(1, 6, 2, settings(20))
        run_tree(single, {k: v[b:b + 1] for k, v in root.items()},
                 [{k: v[b:b + 1] for k, v in step.items()} for step in steps])
        np.testing.assert_array_equal(single.root_policy()[0], batched.root_policy()[b])


def test_tree_is_reused_across_moves_without_leftovers():
    rng = np.random.default_rng(3)
    tree = NumbaTree(2, 5, 2, settings(15))
    first_root, first_steps = random_inputs(rng, 2, 5, 2, 15)
    second_root, second_steps = random_inputs(rng, 2, 5, 2, 15)
    run_tree(tree, first_root, first_steps)
    arrays_before = tree.arrays.children
    run_tree(tree, second_root, second_steps)
    fresh = NumbaTree(2, 5, 2, settings(15))
    run_tree(fresh, second_root, second_steps)
    assert tree.arrays.children is arrays_before
    np.testing.assert_array_equal(tree.root_policy(), fresh.root_policy())
    np.testing.assert_array_equal(tree.root_values(), fresh.root_values())


def tictactoe_batch(positions):
    games = []
    for moves in positions:
        game = TicTacToe()
        for move in moves:
            game.step(move)
        games.append(game)
    return (np.stack([g.observation() for g in games]),
            np.stack([g.legal_actions() for g in games]),
            np.array([g.to_play() for g in games], np.int32))


@pytest.mark.parametrize("tree_class", [NumbaTree, ReferenceTree])
@pytest.mark.parametrize("rule", [RULE_UCB, RULE_PUCT])
@pytest.mark.parametrize("perfect_values", [True, False])
def test_oracle_search_wins_and_blocks(tree_class, rule, perfect_values):
    positions = [
        [0, 3, 1, 4],  # X to move: 2 is the only win (O threatens 5)
        [0, 4, 1],  # O to move: must block at 2
        [4, 0, 8, 2],  # X to move: must block at 1
        [0, 4, 8, 2],  # X to move: must block at 6, which also wins (double threat)
    ]
    expected = [2, 2, 1, 6]
    observations, legal, to_play = tictactoe_batch(positions)
    simulations = 60 if perfect_values else 300
    tree = tree_class(len(positions), 9, 2, settings(simulations, rule=rule))
    search = MCTS(tree, np.random.default_rng(0))
    result = search.run(TicTacToeOracle(perfect_values), observations, legal, to_play,
                        np.full(len(positions), 9, np.int32))
    assert result.actions.tolist() == expected
    # The side that wins at once knows it: its search value is close to +1.
    assert result.root_value[0, 0] > 0.5
    np.testing.assert_allclose(result.root_value.sum(axis=1), 0.0, atol=1e-5)  # zero-sum


def test_full_search_numba_and_reference_agree_with_a_model():
    rng = np.random.default_rng(11)
    model = RandomModel(observation_size=4, num_actions=5, num_players=3, seed=1)
    observations = rng.normal(size=(6, 4)).astype(np.float32)
    legal = rng.random((6, 5)) < 0.8
    legal[:, 0] = True
    to_play = rng.integers(0, 3, 6).astype(np.int32)
    moves = np.array([0, 1, 2, 3, 4, 5], np.int32)
    s = settings(30, fraction=0.25, freezing_moves=3)
    results = [MCTS(cls(6, 5, 3, s), np.random.default_rng(5)).run(model, observations, legal,
                                                                   to_play, moves)
               for cls in (NumbaTree, ReferenceTree)]
    for fast, slow in zip(*results):
        np.testing.assert_array_equal(fast, slow)


@pytest.mark.parametrize("cls", [NumbaTree, ReferenceTree])
def test_a_smaller_batch_searches_like_a_tree_of_its_own_size(cls):
    """A search of B' < B rows on a tree of B (the first B' trees) equals a B'-tree's search,
    before and after a full-size search in between (nothing of one leaks into the other).
    Without root noise, so that the generators' different draw counts do not matter."""
    rng = np.random.default_rng(3)
    model = RandomModel(observation_size=4, num_actions=5, num_players=2, seed=4)
    observations = rng.normal(size=(8, 4)).astype(np.float32)
    legal = rng.random((8, 5)) < 0.8
    legal[:, 1] = True
    to_play = rng.integers(0, 2, 8).astype(np.int32)
    moves = np.zeros(8, np.int32)
    s = settings(20)
    big = MCTS(cls(8, 5, 2, s), np.random.default_rng(9))
    small = MCTS(cls(3, 5, 2, s), np.random.default_rng(9))
    part = (observations[:3], legal[:3], to_play[:3], moves[:3])
    expected = small.run(model, *part)
    for x, y in zip(big.run(model, *part), expected):
        np.testing.assert_array_equal(x, y)
    big.run(model, observations, legal, to_play, moves)
    small.run(model, observations[:3], legal[:3], to_play[:3], moves[:3])
    for x, y in zip(big.run(model, *part), small.run(model, *part)):
        np.testing.assert_array_equal(x, y)
    with pytest.raises(ValueError, match="expected 1 to 3 rows"):
        small.run(model, observations, legal, to_play, moves)


def test_search_is_reproducible_under_a_seed():
    model = RandomModel(observation_size=4, num_actions=9, num_players=2, seed=2)
    observations = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
    legal = np.ones((8, 9), bool)
    s = settings(25, fraction=0.25, freezing_moves=10)

    def search(seed):
        mcts = MCTS(NumbaTree(8, 9, 2, s), np.random.default_rng(seed))
        return [mcts.run(model, observations, legal, np.zeros(8, np.int32),
                         np.zeros(8, np.int32)) for _ in range(3)]

    first, again, other = search(1), search(1), search(2)
    for a, b in zip(first, again):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
    assert any(not np.array_equal(a.policy, b.policy) for a, b in zip(first, other))


def test_sampled_actions_follow_visit_counts():
    rng = np.random.default_rng(0)
    root, steps = random_inputs(rng, 1, 4, 1, 30)
    root["legal"][:] = True
    tree = NumbaTree(1, 4, 1, settings(30, freezing_moves=1))
    run_tree(tree, root, steps)
    policy = tree.root_policy()[0]
    draws = [int(tree.choose_actions(np.zeros(1, np.int32), rng.random(1))[0])
             for _ in range(4000)]
    frequencies = np.bincount(draws, minlength=4) / len(draws)
    np.testing.assert_allclose(frequencies, policy, atol=0.03)
    greedy = tree.choose_actions(np.ones(1, np.int32), rng.random(1))
    assert greedy[0] == np.argmax(policy)


def test_low_temperature_sampling_approaches_argmax():
    rng = np.random.default_rng(1)
    root, steps = random_inputs(rng, 1, 4, 1, 30)
    tree = NumbaTree(1, 4, 1, settings(30, freezing_moves=1, temperature=0.05))
    run_tree(tree, root, steps)
    draws = {int(tree.choose_actions(np.zeros(1, np.int32), rng.random(1))[0])
             for _ in range(200)}
    assert draws == {int(np.argmax(tree.root_policy()[0]))}


def test_dirichlet_noise_reaches_the_root_prior():
    root, _ = random_inputs(np.random.default_rng(2), 2, 5, 1, 0)
    root["legal"][:] = True
    plain = NumbaTree(2, 5, 1, settings(1))
    noisy = NumbaTree(2, 5, 1, settings(1, fraction=0.25))
    plain.expand_roots(**root)
    noisy.expand_roots(**root)
    noise = root["noise"] / root["noise"].sum(axis=1, keepdims=True)
    expected = 0.75 * plain.arrays.prior[:, 0] + 0.25 * noise
    np.testing.assert_allclose(noisy.arrays.prior[:, 0], expected, rtol=1e-12)


@pytest.mark.parametrize("name, bad", [
    ("legal", np.ones((2, 4), bool)),
    ("legal", np.ones((2, 5), np.int32)),
    ("to_play", np.zeros(2, np.int64)),
    ("value", np.zeros((2, 1), np.float32)),
    ("policy_logits", np.zeros((2, 5), np.float64)),
    ("noise", np.zeros((3, 5))),
])
def test_bad_root_inputs_name_the_array(name, bad):
    root, _ = random_inputs(np.random.default_rng(0), 2, 5, 2, 0)
    root[name] = bad
    with pytest.raises(ValueError, match=f"^{name}: expected an array of shape"):
        NumbaTree(2, 5, 2, settings(3, fraction=0.25)).expand_roots(**root)


def test_bad_leaf_inputs_and_misuse_are_reported():
    root, steps = random_inputs(np.random.default_rng(0), 2, 5, 2, 2)
    tree = NumbaTree(2, 5, 2, settings(1))
    tree.expand_roots(**root)
    tree.select()
    with pytest.raises(ValueError, match=r"^reward: expected an array of shape \(2, 2\)"):
        tree.expand_and_backup(**{**steps[0], "reward": np.zeros((2, 3), np.float32)})
    with pytest.raises(ValueError, match="leaf to_play is out of range"):
        tree.expand_and_backup(**{**steps[0], "to_play": np.array([0, 2], np.int32)})
    tree.expand_and_backup(**steps[0])
    with pytest.raises(ValueError, match="all 1 simulations are done"):
        tree.select()


def test_finished_games_and_bad_players_are_rejected():
    root, _ = random_inputs(np.random.default_rng(0), 2, 5, 2, 0)
    no_moves = {**root, "legal": np.zeros((2, 5), bool)}
    with pytest.raises(ValueError, match="no legal action"):
        NumbaTree(2, 5, 2, settings(3)).expand_roots(**no_moves)
    with pytest.raises(ValueError, match="root to_play is out of range"):
        NumbaTree(2, 5, 2, settings(3)).expand_roots(**{**root, "to_play": np.array([0, -1],
                                                                                    np.int32)})
