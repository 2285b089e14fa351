"""Exact win/draw/loss rates against uniform random play, by enumerating every random move.

    python benchmarks/exact_rates.py CHECKPOINT [CHECKPOINT ...]

Checkpoints of `tictactoe` or of `spiel:tic_tac_toe` (whose positions are rebuilt stone by stone).

For each checkpoint it also prints the two figures of issue 14's bar: the lines the agent loses
in each seat (every opponent reply explored: a line lost to some opponent is a loss of
positive probability against random play), and the share of the 4,520 reachable positions with
a move to make in which the agent's move keeps the position's game-theoretic value.

The evaluation at a checkpoint plays 50 games per seat against the random player, so its win
rates carry a sampling error of several points. A tic-tac-toe agent is deterministic, so its true
rates follow from the game tree: every random move is a branch of probability 1/(legal moves),
every agent move one search (cached by position). The same enumeration gives the yardstick of
the bar: the perfect minimax player that breaks ties at random, and the player that maximises
its wins against random play among the moves that never lose. Also lists each seat's most
likely games that the agent does not win, and how many of the positions whose value the agent's
move loses its checkpoint's replay window held (up to the board's 8 symmetries): a miss in a
position training never met is one of coverage, not of fitting. Not a test: a few seconds per
checkpoint.
"""

from __future__ import annotations

import argparse
import copy
from collections.abc import Callable
from math import comb

import numpy as np

from games.tictactoe import (
    TicTacToe,
    make_config,
    minimax_value,
    minimax_values,
    symmetries,
    winner,
)

Chooser = Callable[[TicTacToe], list[tuple[int, float]]]  # moves and their probabilities
WIN, DRAW, LOSS = range(3)


def outcomes(game: TicTacToe, seat: int, choose: Chooser, probability: float = 1.0,
             line: tuple[int, ...] = (), misses: list | None = None,
             memo: dict | None = None) -> np.ndarray:
    """[P(win), P(draw), P(loss)] of `seat` playing `choose` against uniform random moves;
    games not won are appended to `misses` as (probability, result, moves). Without `misses`,
    `memo` may keep each position's rates (scaled to probability 1) for reuse."""
    if memo is not None and misses is None and game.board in memo:
        return memo[game.board] * probability
    if game.terminal():
        owner = winner(game.board)
        result = WIN if owner == seat else DRAW if owner is None else LOSS
        if misses is not None and result != WIN:
            misses.append((probability, "DL"[result - 1], line))
        return np.eye(3)[result] * probability
    if game.to_play() == seat:
        moves = choose(game)
    else:
        legal = np.flatnonzero(game.legal_actions())
        moves = [(int(move), 1.0 / len(legal)) for move in legal]
    total = np.zeros(3)
    for move, share in moves:
        child = copy.deepcopy(game)
        child.step(move)
        total += outcomes(child, seat, choose, probability * share, line + (move,), misses,
                          memo)
    if memo is not None and misses is None:
        memo[game.board] = total / probability
    return total


def minimax_with_random_ties(game: TicTacToe) -> list[tuple[int, float]]:
    values = np.array(minimax_values(game.board))
    best = np.flatnonzero(values == values.max())
    return [(int(move), 1.0 / len(best)) for move in best]


def most_wins_never_losing(seat: int) -> Chooser:
    """Among the moves of the best minimax value, the one with the most wins against random."""
    memo: dict = {}

    def choose(game: TicTacToe) -> list[tuple[int, float]]:
        values = np.array(minimax_values(game.board))
        best = [int(move) for move in np.flatnonzero(values == values.max())]

        def wins(move: int) -> float:
            child = copy.deepcopy(game)
            child.step(move)
            return outcomes(child, seat, choose, memo=memo)[WIN]
        return [(max(best, key=wins), 1.0)]
    return choose


def reachable_positions() -> list[TicTacToe]:
    """Every position reachable from the empty board with a move to make (4,520)."""
    found: dict[tuple[int, ...], TicTacToe] = {}
    frontier = [TicTacToe()]
    while frontier:
        game = frontier.pop()
        if game.terminal() or game.board in found:
            continue
        found[game.board] = game
        for move in np.flatnonzero(game.legal_actions()):
            child = copy.deepcopy(game)
            child.step(int(move))
            frontier.append(child)
    return list(found.values())


def as_agent_game(agent, position: TicTacToe):
    """`position` as a game of the agent's plugin: itself for a native tic-tac-toe agent; for
    `spiel:tic_tac_toe` (same cells, same action numbers) X's and O's stones replayed in turn."""
    if agent.config.game == "tictactoe":
        return position
    if agent.config.game != "spiel:tic_tac_toe":
        raise SystemExit(f"{agent.config.game}: exact rates are for tic-tac-toe agents only")
    game = agent.plugin.make_game(agent.config, np.random.default_rng(0))
    moves = [0] * sum(stone != 0 for stone in position.board)
    moves[0::2] = [cell for cell, stone in enumerate(position.board) if stone == 1]  # X
    moves[1::2] = [cell for cell, stone in enumerate(position.board) if stone == 2]  # O
    for move in moves:
        game.step(move)
    assert game.to_play() == position.to_play()
    return game


def agent_moves(checkpoint: str) -> tuple[dict[tuple[int, ...], int], str]:
    """The agent's move in every reachable position, searched in batches, and its game."""
    from muzero import load_agent

    agent = load_agent(checkpoint)
    positions = reachable_positions()
    actions = agent.search_games([as_agent_game(agent, game) for game in positions]).actions
    return ({game.board: int(move) for game, move in zip(positions, actions)},
            agent.config.game)


#: the 8 rotations and reflections of the board, as the game declares them (cell permutations)
CELL_SYMMETRIES = [sigma for _, sigma in symmetries(make_config())]


def canonical(board: tuple[int, ...]) -> tuple[int, ...]:
    """One representative of the board's 8 rotations and reflections."""
    cells = np.asarray(board)
    return min(tuple(int(cell) for cell in cells[sigma]) for sigma in CELL_SYMMETRIES)


def boards_of(observations: np.ndarray, game: str) -> np.ndarray:
    """The boards [N, 9] (0 empty, 1 X, 2 O, the native game's cells) that observations show."""
    if game == "tictactoe":  # [3, 3, planes]: X, O, to play
        crosses, noughts = observations[..., 0], observations[..., 1]
    else:  # OpenSpiel's [planes, 3, 3]: empty, nought, cross, then the movers
        crosses, noughts = observations[:, 2], observations[:, 1]
    return (crosses + 2 * noughts).reshape(len(observations), 9).astype(int)


def boards_in_replay(checkpoint: str, game: str) -> set[tuple[int, ...]]:
    """The positions (up to symmetry) in the checkpoint's replay window."""
    from muzero.checkpoint import AGENT, load_checkpoint

    arrays = load_checkpoint(checkpoint, AGENT).replay_arrays()
    held = arrays["priorities"] > 0  # empty and evicted rows have none
    boards = np.unique(boards_of(arrays["observations"][held], game), axis=0)
    return {canonical(tuple(board)) for board in boards}


def coverage_line(checkpoint: str, game: str, moves: dict[tuple[int, ...], int]) -> str:
    held = boards_in_replay(checkpoint, game)
    every = {canonical(board) for board in moves}
    missed = [board for board, move in moves.items()
              if minimax_values(board)[move] != minimax_value(board)]
    unseen = sum(canonical(board) not in held for board in missed)
    return (f"{checkpoint}: its replay window holds {len(every & held)} of the "
            f"{len(every)} positions up to symmetry; of the {len(missed)} positions whose value "
            f"the agent's move loses, {unseen} are not in it")


def agent_chooser(moves: dict[tuple[int, ...], int]) -> Chooser:
    return lambda game: [(moves[game.board], 1.0)]


def value_kept_share(moves: dict[tuple[int, ...], int]) -> float:
    """Share of positions where the chosen move has the position's minimax value."""
    kept = sum(minimax_values(board)[move] == minimax_value(board)
               for board, move in moves.items())
    return kept / len(moves)


def lost_lines(choose: Chooser, seat: int) -> int:
    misses: list = []
    outcomes(TicTacToe(), seat, choose, misses=misses)
    return sum(result == "L" for _, result, _ in misses)


def chance_of_at_least(wins: int, games: int, rate: float) -> float:
    return sum(comb(games, k) * rate ** k * (1 - rate) ** (games - k)
               for k in range(wins, games + 1))


def report(name: str, choosers: list[Chooser], shown: int) -> None:
    for seat, choose in enumerate(choosers):
        misses: list = []
        win, draw, loss = outcomes(TicTacToe(), seat, choose, misses=misses)
        bar = 0.97 if seat == 0 else 0.78
        needed = int(np.ceil(bar * 50))
        print(f"{name} seat {seat}: win {win:.4f} draw {draw:.4f} loss {loss:.4f} | "
              f"P(at least {needed} wins of 50) {chance_of_at_least(needed, 50, win):.2f}, "
              f"P(no loss in 50) {(1 - loss) ** 50:.2f}")
        for probability, result, moves in sorted(misses, reverse=True)[:shown]:
            print(f"    {result} p={probability:.4f} moves {list(moves)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="*", help="checkpoint or run folders")
    parser.add_argument("--show", type=int, default=3, help="games not won to list per seat")
    arguments = parser.parse_args()
    report("minimax, random ties", [minimax_with_random_ties] * 2, 0)
    report("most wins, never losing", [most_wins_never_losing(0), most_wins_never_losing(1)], 0)
    for checkpoint in arguments.checkpoints:
        moves, game = agent_moves(checkpoint)
        choose = agent_chooser(moves)
        report(checkpoint, [choose, choose], arguments.show)
        print(f"{checkpoint}: lines lost as X {lost_lines(choose, 0)}, as O "
              f"{lost_lines(choose, 1)}; exact value kept in {value_kept_share(moves):.2%} of "
              f"{len(moves)} positions")
        print(coverage_line(checkpoint, game, moves))


if __name__ == "__main__":
    main()
