"""Matches against a game's reference players, played in lockstep: one search for all games.

Multi-player games report wins, draws and losses per agent seat (a win: the agent's total reward
beats every other player's). Single-player games report the mean episode return with its standard
error, next to the game's reference value (e.g. the Bayes-optimal return of the bandit), the
environment's solved threshold where it declares one, and the returns of its built-in players as
baselines.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

from muzero.agent import Agent
from muzero.config import Config
from muzero.game import Game, Player
from muzero.plugins import GamePlugin

SELF = "self"  # the agent in every seat


@dataclass
class SeatResult:
    wins: int = 0
    draws: int = 0
    losses: int = 0

    @property
    def games(self) -> int:
        return self.wins + self.draws + self.losses

    def __str__(self) -> str:
        return f"W{self.wins} D{self.draws} L{self.losses}"


@dataclass
class MatchResult:
    """The agent against one opponent, per agent seat."""

    opponent: str
    seats: list[SeatResult]

    @property
    def losses(self) -> int:
        return sum(seat.losses for seat in self.seats)

    def summary(self) -> str:
        return f"{self.opponent}: " + ", ".join(f"seat {i} {seat}"
                                                for i, seat in enumerate(self.seats))


@dataclass
class ReturnResult:
    """A player's mean episode return in a single-player game."""

    player: str
    mean: float
    stderr: float
    episodes: int
    reference: float | None = None
    baselines: dict[str, float] = field(default_factory=dict)
    threshold: float | None = None  # the return at which the environment counts as solved

    def summary(self) -> str:
        text = f"{self.player}: mean return {self.mean:.3f} ± {self.stderr:.3f} " \
               f"({self.episodes} episodes)"
        if self.reference is not None:
            text += f", reference {self.reference:.3f}"
        if self.threshold is not None:
            text += f", solved at {self.threshold:g}"
        return text + "".join(f", {name} {value:.3f}" for name, value in self.baselines.items())


def _play_lockstep(games: list[Game], chooser: Callable[[int, Game], bool], agent: Agent,
                   others: Callable[[int, Game], int]) -> np.ndarray:
    """Play every game to its end; `chooser(i, game)` says whether the agent moves in game i.
    The agent's moves of one round are one batched search. Returns total rewards [G, P]."""
    totals = np.zeros((len(games), games[0].num_players))
    while True:
        live = [i for i, game in enumerate(games) if not game.terminal()]
        if not live:
            return totals
        agent_turn = [chooser(i, games[i]) for i in live]
        searched = [i for i, turn in zip(live, agent_turn) if turn]
        if searched:
            actions = agent.search_games([games[i] for i in searched]).actions
            for i, action in zip(searched, actions):
                totals[i] += games[i].step(int(action))
        for i, turn in zip(live, agent_turn):
            if not turn:
                totals[i] += games[i].step(others(i, games[i]))


def _opponent(plugin: GamePlugin, config: Config, name: str, rng: np.random.Generator) -> Player:
    if name not in plugin.opponents:
        raise ValueError(f"unknown opponent {name!r} for {plugin.name}; available: "
                         f"{', '.join(sorted(plugin.opponents) + [SELF])}")
    return plugin.opponents[name](config, rng)


def play_match(agent: Agent, plugin: GamePlugin, config: Config, opponent: str, num_games: int,
               seed: int = 0) -> MatchResult:
    """`num_games` games, the agent's seat cycling over the players (game i: seat i % P)."""
    rng = np.random.default_rng(seed)
    games = [plugin.make_game(config, rng) for _ in range(num_games)]
    players = games[0].num_players
    seats = [i % players for i in range(num_games)]
    if opponent == SELF:
        totals = _play_lockstep(games, lambda i, game: True, agent, None)
    else:
        other = _opponent(plugin, config, opponent, rng)
        totals = _play_lockstep(games, lambda i, game: game.to_play() == seats[i], agent,
                                lambda i, game: other.select_action(game))
    result = MatchResult(opponent, [SeatResult() for _ in range(players)])
    for seat, total in zip(seats, totals):
        best_other = np.delete(total, seat).max()
        record = result.seats[seat]
        if total[seat] > best_other:
            record.wins += 1
        elif total[seat] == best_other:
            record.draws += 1
        else:
            record.losses += 1
    return result


def _mean_and_stderr(returns: np.ndarray) -> tuple[float, float]:
    spread = float(returns.std(ddof=1)) if len(returns) > 1 else 0.0
    return float(returns.mean()), spread / math.sqrt(len(returns))


def solo_returns(agent: Agent | None, plugin: GamePlugin, config: Config, num_games: int,
                 seed: int = 0, player: str | None = None) -> ReturnResult:
    """Mean return over `num_games` episodes of a single-player game, by the agent or, with
    `player`, by one of the game's built-in players (same seed: the same hidden draws)."""
    rng = np.random.default_rng(seed)
    games = [plugin.make_game(config, rng) for _ in range(num_games)]
    if player is None:
        totals = _play_lockstep(games, lambda i, game: True, agent, None)
    else:
        built_in = _opponent(plugin, config, player, rng)
        totals = _play_lockstep(games, lambda i, game: False, agent,
                                lambda i, game: built_in.select_action(game))
    mean, stderr = _mean_and_stderr(totals[:, 0])
    reference = plugin.reference_value(config) if plugin.reference_value else None
    return ReturnResult(player or "agent", mean, stderr, num_games, reference,
                        threshold=plugin.reward_threshold)


def evaluate(agent: Agent, plugin: GamePlugin, config: Config, num_games: int, seed: int = 0,
             opponents: list[str] | None = None, baselines: bool = False) -> dict:
    """The standard evaluation of a run: every opponent of a multi-player game, or the return of
    a single-player game (with `baselines`, also the built-in players' returns). JSON-ready."""
    num_players = plugin.make_game(config, np.random.default_rng(0)).num_players
    if num_players == 1 and opponents is not None:
        raise ValueError(f"{plugin.name} is a one-player game: it has no opponents (its "
                         f"evaluation is the agent's return, with the returns of "
                         f"{', '.join(sorted(plugin.opponents)) or 'no built-in players'} "
                         f"beside it)")
    if num_players == 1:
        result = solo_returns(agent, plugin, config, num_games, seed)
        if baselines:
            for name in sorted(plugin.opponents):
                result.baselines[name] = solo_returns(None, plugin, config, num_games, seed,
                                                      name).mean
        return {"returns": asdict(result), "summary": result.summary()}
    names = opponents if opponents is not None else sorted(plugin.opponents)
    matches = [play_match(agent, plugin, config, name, num_games, seed) for name in names]
    return {"matches": {match.opponent: [asdict(seat) for seat in match.seats]
                        for match in matches},
            "summary": " | ".join(match.summary() for match in matches)}
