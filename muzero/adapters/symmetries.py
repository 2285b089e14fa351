"""Board symmetries of an OpenSpiel game, found by trying them, for data augmentation.

Native tic-tac-toe learns from each position seen through the 8 symmetries of its board; without
them the same learner kept the exact value in 84% of positions instead of 98%
(docs/experiments.md). An OpenSpiel game declares no symmetries, so the adapter tries each
rotation and reflection of the observation's last two axes (the board, for games whose tensor
is planes of cells) and keeps one only where it holds:
1. the start position looks the same transformed;
2. every action is legal at the start, and each one's result, transformed, is the result of
   exactly one action: that pairing is the action map;
3. over random games, playing the mapped moves in a twin game gives, after every move, the
   transformed observation, the mapped legal moves, the same player to move, the same rewards
   and the same end.
A transformation that passes is used; one that fails anywhere is dropped. Games with chance
nodes get none (the twin would draw other outcomes), nor do games whose start position leaves
some action illegal (chess, breakthrough: the action map cannot be read off the start).
"""

from __future__ import annotations

import math

import numpy as np

from muzero.adapters.spiel import has_chance

#: random games each candidate must survive, and the most moves they may take together
VERIFY_GAMES = 100
VERIFY_MOVES = 5_000


def board_transforms(shape: tuple[int, ...]) -> list[np.ndarray]:
    """Gather indices over the flattened observation for each rotation and reflection of its
    last two axes (8 for a square board, 4 otherwise), the identity first."""
    if len(shape) < 2 or shape[-1] * shape[-2] < 2:
        return []
    height, width = shape[-2:]
    cells = np.arange(height * width).reshape(height, width)
    planes = math.prod(shape[:-2])
    found: list[np.ndarray] = []
    for flip in (False, True):
        for turns in (0, 1, 2, 3) if height == width else (0, 2):
            board = np.rot90(np.fliplr(cells) if flip else cells, turns).reshape(-1)
            index = (np.arange(planes)[:, None] * cells.size + board[None, :]).reshape(-1)
            if not any(np.array_equal(index, seen) for seen in found):
                found.append(index)
    return found


def _observer(game):
    """The adapter's observation of a pyspiel state, flattened."""
    return lambda state: game.observe(state).reshape(-1)


def action_map(game, transform: np.ndarray) -> np.ndarray | None:
    """a -> the action that plays a's move on the transformed board, read off the start
    position (steps 1 and 2 of the module's rule); None where it cannot be read."""
    observe = _observer(game)
    start = game.game.new_initial_state()
    legal = np.asarray(start.legal_actions_mask(start.current_player()), bool)
    seen_at_start = observe(start)
    if not legal.all() or not np.array_equal(seen_at_start[transform], seen_at_start):
        return None
    results = []
    for action in range(len(legal)):
        child = start.clone()
        child.apply_action(action)
        results.append(observe(child))
    mapping = np.full(len(legal), -1, np.int64)
    for action, result in enumerate(results):
        matches = [other for other, seen in enumerate(results)
                   if np.array_equal(seen, result[transform])]
        if len(matches) != 1:
            return None
        mapping[action] = matches[0]
    return mapping if sorted(mapping.tolist()) == list(range(len(legal))) else None


def holds(game, transform: np.ndarray, mapping: np.ndarray, seed: int = 0) -> bool:
    """Step 3 of the module's rule: random games and their mapped twins stay transformed."""
    observe = _observer(game)
    rng = np.random.default_rng(seed)
    moves = 0
    for _ in range(VERIFY_GAMES):
        state, twin = game.game.new_initial_state(), game.game.new_initial_state()
        while True:
            if state.is_terminal() != twin.is_terminal():
                return False
            if not np.array_equal(observe(twin), observe(state)[transform]):
                return False
            if state.is_terminal():
                break
            if state.current_player() != twin.current_player():
                return False
            legal = np.asarray(state.legal_actions_mask(state.current_player()), bool)
            twin_legal = np.asarray(twin.legal_actions_mask(twin.current_player()), bool)
            if not np.array_equal(twin_legal[mapping], legal):
                return False
            action = int(rng.choice(np.flatnonzero(legal)))
            state.apply_action(action)
            twin.apply_action(int(mapping[action]))
            if not np.array_equal(state.rewards(), twin.rewards()):
                return False
            moves += 1
            if moves >= VERIFY_MOVES:
                return True
    return True


def verified_symmetries(game) -> list[tuple[np.ndarray, np.ndarray]]:
    """The symmetries of a `SpielGame` that hold, as (observation_index, action_index) gather
    indices (`muzero.symmetry.Symmetry`), the identity first; none for games with chance nodes
    or where only the identity holds (augmenting by it alone would change nothing)."""
    if has_chance(game.game):
        return []
    found = []
    for transform in board_transforms(game.observation_shape):
        mapping = action_map(game, transform)
        if mapping is not None and holds(game, transform, mapping):
            # the transformed policy at mapping[a] is the policy at a
            found.append((transform, np.argsort(mapping)))
    return found if len(found) > 1 else []
