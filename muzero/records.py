"""A finished game as compact arrays: what self-play produces and the replay buffer will store."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class GameRecord:
    """T moves of one game; row t describes the position before move t and the search there."""

    observations: np.ndarray  # [T, *observation_shape] float32
    actions: np.ndarray  # [T] int32
    rewards: np.ndarray  # [T, P] float32: every player's reward for move t
    to_play: np.ndarray  # [T] int32: who made move t
    root_values: np.ndarray  # [T, P] float32: search value of the position, every player
    policies: np.ndarray  # [T, A] float32: root visit shares
    legal: np.ndarray  # [T, A] bool: the moves legal at t (a reanalysing search needs them)
    truncated: bool = False  # cut by a time limit: the last position still has a future

    def __post_init__(self) -> None:
        length = len(self.actions)
        for name in ("observations", "rewards", "to_play", "root_values", "policies", "legal"):
            if len(getattr(self, name)) != length:
                raise ValueError(f"GameRecord.{name} has {len(getattr(self, name))} rows, "
                                 f"actions has {length}")

    def __len__(self) -> int:
        return len(self.actions)

    def total_rewards(self) -> np.ndarray:
        """Undiscounted return of every player [P]."""
        return self.rewards.sum(axis=0)


class TrajectoryBuilder:
    """Collects one game's rows as they are played, then stacks them into a `GameRecord`."""

    def __init__(self) -> None:
        self._rows: list[tuple] = []

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, observation: np.ndarray, action: int, rewards: np.ndarray, to_play: int,
            root_value: np.ndarray, policy: np.ndarray, legal: np.ndarray) -> None:
        self._rows.append((observation, action, rewards, to_play, root_value, policy, legal))

    def clear(self) -> None:
        self._rows = []

    def finish(self, truncated: bool = False) -> GameRecord:
        observations, actions, rewards, to_play, values, policies, legal = zip(*self._rows)
        self._rows = []
        return GameRecord(np.stack(observations).astype(np.float32),
                          np.array(actions, np.int32), np.stack(rewards).astype(np.float32),
                          np.array(to_play, np.int32), np.stack(values).astype(np.float32),
                          np.stack(policies).astype(np.float32), np.stack(legal).astype(bool),
                          bool(truncated))


def legal_from_search(policies: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """Legal moves [T, A] for records stored before they were: the moves the search visited
    and the move played, all legal, and all a reanalysing search may consider."""
    legal = np.asarray(policies) > 0.0
    if legal.ndim == 2:  # anything else is refused by the buffer's shape check
        rows = np.flatnonzero((actions >= 0) & (actions < legal.shape[1]))
        legal[rows, actions[rows]] = True
    return legal


REWARD_TOLERANCE = 1e-5


def check_rules(game, record: GameRecord) -> np.ndarray:
    """Replay `record`'s moves in `game` (a fresh environment, e.g. `plugin.make_game(...)`),
    raising `ValueError` naming the first move that breaks the rules: an illegal action, a move
    recorded as legal that is not, a wrong player to move, or a game that ends before or after
    the record does. Returns the rewards the rules gave [T, P], for `check_rewards` (one call
    for many games: a comparison per game would cost more than the replay). Observations are
    not compared.
    """
    length = len(record)
    replayed = np.empty_like(record.rewards)
    for t, (action, player) in enumerate(zip(record.actions.tolist(),
                                             record.to_play.tolist())):
        legal = game.legal_actions()  # all False once the game is over (the game contract)
        if not 0 <= action < len(legal) or not legal[action]:
            if game.terminal():
                raise ValueError(f"game record: the game is over after move {t}, but the "
                                 f"record has {length} moves")
            raise ValueError(f"game record: move {t}: action {action} is not legal here; "
                             f"legal actions are {np.flatnonzero(legal).tolist()}")
        if (record.legal[t] & ~legal).any():
            raise ValueError(f"game record: move {t}: the legal moves recorded, "
                             f"{np.flatnonzero(record.legal[t]).tolist()}, include moves the "
                             f"rules forbid (legal: {np.flatnonzero(legal).tolist()})")
        if game.to_play() != player:
            raise ValueError(f"game record: move {t}: to_play is {player}, but player "
                             f"{game.to_play()} is to move")
        replayed[t] = game._apply(action)  # checked above: what Game.step would check again
    if not game.terminal():
        raise ValueError(f"game record: the game is not over after its {length} moves")
    if record.truncated != game.truncated():
        raise ValueError(f"game record: the record says the game was "
                         f"{'' if record.truncated else 'not '}cut by a time limit, the rules "
                         f"say the opposite")
    return replayed


def check_time_limit(time_limit: int | None, record: GameRecord) -> None:
    """What can be checked of a game whose moves cannot be replayed: it is no longer than the
    time limit, and is cut by it exactly when it reaches it. Raises `ValueError` otherwise."""
    if time_limit is None:
        if record.truncated:
            raise ValueError("game record: marked as cut by a time limit, but the game has "
                             "none")
        return
    if len(record) > time_limit:
        raise ValueError(f"game record: {len(record)} moves, more than the time limit of "
                         f"{time_limit}")
    if record.truncated and len(record) != time_limit:
        raise ValueError(f"game record: marked as cut by the time limit of {time_limit} "
                         f"moves after {len(record)}")


def check_rewards(recorded: np.ndarray, replayed: np.ndarray | None,
                  bounds: tuple[float, float] | None, lengths: np.ndarray) -> None:
    """Raise `ValueError` naming the first move of games (rows concatenated, `lengths` [G])
    whose recorded rewards [N, P] the rules cannot give: where the rules decide rewards
    (`bounds` None), any that differ from the replay's `replayed` [N, P]; in a game with chance
    (the bandit's payouts, which depend on draws a record does not carry), any outside the
    game's `chance_reward_bounds`. With neither a replay nor bounds nothing is checked."""
    if bounds is None and replayed is None:
        return
    if bounds is None:
        wrong = (recorded != replayed).any(axis=1)  # exact equality is the usual case: fast
        if wrong.any():
            wrong &= (np.abs(recorded - replayed)
                      > REWARD_TOLERANCE * (1 + np.abs(replayed))).any(axis=1)
        expected = "but the rules give {}"
    else:
        wrong = ((recorded < bounds[0]) | (recorded > bounds[1])).any(axis=1)
        expected = f"outside [{bounds[0]}, {bounds[1]}], the range this game's rewards can take"
    if wrong.any():
        row = int(np.argmax(wrong))
        starts = np.concatenate([[0], np.cumsum(lengths)])
        number = int(np.searchsorted(starts, row, side="right")) - 1
        raise ValueError(f"game {number}: game record: move {row - starts[number]}: rewards "
                         f"{recorded[row].tolist()}, "
                         + expected.format(replayed[row].tolist()))
