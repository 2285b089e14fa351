"""Hyper-parameters derived from what an environment declares, for games without a game file.

Each rule below turns a fact of the environment (observation size, actions, players, episode
length, reward range) into config fields and says why; `derive_config` returns the config and
the lines that `python -m muzero` prints at start-up. Any field can still be set by its flag.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from muzero.config import Config
from muzero.support import EPSILON

PAPER_ATARI_DISCOUNT = 0.997
PAPER_SAMPLED_MOVES = 30  # board games: moves sampled from the visit counts (the pseudocode's)
TD_STEPS = 50  # single-player n-step targets: measured on CartPole, docs/experiments.md
#: batch samples drawn per position played (the replay ratio) where value targets bootstrap
SAMPLES_PER_POSITION = 16
#: the same for board games, whose value target is one game's final outcome (a noisy label)
BOARD_SAMPLES_PER_POSITION = 42
#: board games' share of uniformly random self-play moves (games/tictactoe.py measured it)
BOARD_RANDOM_MOVES = 0.15
#: train steps the single-player agent's moving average spans (momentum 0.999)
AGENT_AVERAGING = 1000
#: positions a derived run plays
RUN_POSITIONS = 100_000


@dataclass(frozen=True)
class EnvironmentFacts:
    """What the rules below read from an environment."""

    observation_shape: tuple[int, ...]
    num_actions: int
    num_players: int
    time_limit: int | None  # most moves an episode lasts, where the environment says
    board_game: bool  # several players rewarded only at the end (OpenSpiel's terminal rewards)
    value_range: tuple[float, float] | None  # (min, max) return declared (OpenSpiel utilities)

    @property
    def value_bound(self) -> float | None:
        """The largest |return| the environment declares."""
        return None if self.value_range is None else max(abs(v) for v in self.value_range)


def squeezed(x: float) -> float:
    """h(x) of the categorical support (muzero/support.py), for sizing it."""
    return math.sqrt(abs(x) + 1.0) - 1.0 + EPSILON * abs(x)


def derive_config(game: str, options: dict, facts: EnvironmentFacts) -> tuple[Config, list[str]]:
    """The config for `game` and one line per derived field saying what it came from."""
    fields: dict = {}
    why: list[str] = []

    def rule(reason: str, **values) -> None:
        fields.update(values)
        why.append(", ".join(f"{name}={value}" for name, value in values.items())
                   + f": {reason}")

    size = math.prod(facts.observation_shape)
    width = min(256, max(64, 2 ** math.ceil(math.log2(2 * size))))
    rule(f"an MLP over the flattened observation ({size} numbers), twice as wide rounded to a "
         f"power of two within [64, 256]", network="mlp", hidden_size=width)
    rule(f"Dirichlet alpha about 10 / legal moves as AlphaZero scaled it, at most 0.3 "
         f"({facts.num_actions} actions)",
         root_dirichlet_alpha=round(min(0.3, 10.0 / facts.num_actions), 3))
    length = facts.time_limit
    if facts.board_game:
        rule("a board game: no discount, the value target is the final outcome (n at least "
             f"the longest game, {length} moves)", discount=1.0, td_steps=max(1, length or 1))
        low, high = facts.value_range or (-1.0, 1.0)
        rule(f"Q normalised in the game's known return range [{low}, {high}] (the paper's "
             f"board-game bounds)", known_value_min=float(low), known_value_max=float(high))
        rule(f"moves sampled from the visit counts for the first {PAPER_SAMPLED_MOVES} moves, "
             f"at most half the longest game, then the most visited: the paper's 30 are an "
             f"opening of chess or Go, and the later moves, played at full strength, give the "
             f"outcome that is the value target (spiel:tic_tac_toe, 42 samples a position, "
             f"seed 1: no line lost with 4 of 9 moves sampled, O lost 4 of 50 games to "
             f"minimax with all 9; docs/experiments.md)",
             freezing_moves=min(PAPER_SAMPLED_MOVES, (length or 2 * PAPER_SAMPLED_MOVES) // 2))
        rule(f"one self-play move in about seven uniformly random (the search's policy and value "
             f"are still the stored targets), so that training meets the positions a weak "
             f"opponent creates, as the native tic-tac-toe measured: spiel:tic_tac_toe's weak "
             f"moves were mostly in positions its replay window never held; seeds 0-4 at "
             f"{BOARD_RANDOM_MOVES}: the window holds 401-550 of the 627 positions up to symmetry "
             f"against 258-328, exact value kept in 96.0-97.9% of positions (mean 97.2) against "
             f"92.4-98.2% (mean 95.1), no line lost either way; connect four seed 0: 94 and 86 "
             f"of 100 games a seat won against random play against 87 and 81; "
             f"docs/experiments.md)",
             random_move_probability=BOARD_RANDOM_MOVES)
        bound = facts.value_bound or 1.0
        support = 0 if bound <= 1.0 else math.ceil(squeezed(bound))
        rule(f"returns within ±{bound}: " + ("scalars with MSE" if support == 0 else
             "a categorical support covering h(bound)"), scalar_support_size=support)
    else:
        discount = PAPER_ATARI_DISCOUNT
        rule("a single-player episode of many moves: the paper's Atari discount; 50-step value "
             "targets, so that a consequence some 100 moves late reaches the target in two hops "
             "(CartPole, 3 seeds: mean return 340 against 287 with the paper's 10; "
             "docs/experiments.md)", discount=discount, td_steps=TD_STEPS)
        horizon = 1.0 / (1.0 - discount)
        bound = facts.value_bound or min(float(length or math.inf), horizon)
        support = math.ceil(squeezed(bound))
        rule(f"values up to {bound:.0f} (rewards of at most 1 a move over "
             f"{'the time limit' if length and length < horizon else '1 / (1 - discount)'}; "
             f"otherwise set --scalar-support-size): a categorical support of 2K+1 atoms "
             f"over h(x) covering it", scalar_support_size=support)
        rule("every move sampled from the visit counts in self-play (evaluation plays the "
             "most visited)", freezing_moves=length or 1000)
        rule("the paper's Atari temperature schedule, 1 then 0.5 after half the run and 0.25 "
             "after three quarters, so self-play nears the evaluated play as training ends "
             "(CartPole seeds 0-2 ended at 486, 436, 409 against 478, 425, 376 at a constant "
             "1; docs/experiments.md)", temperature_schedule="paper")
        rule("Reanalyse (MuZero Reanalyse): one stored position searched again with the newest "
             "weights per position played; its policy target and search value are replaced, "
             "and the n-step value targets that bootstrap from that value follow (CartPole "
             "seeds 0-2 at the end of the run: 455, 433, 500 against 486, 436, 409 without, "
             "for about 9% more time; a mean gain, not on every seed; board games keep it off: "
             "their value target is the final outcome, which reanalysis leaves as it is, and "
             "spiel:tic_tac_toe measured no better; docs/experiments.md)",
             reanalyse_ratio=1.0)
        rule(f"the agent evaluated and saved is a moving average of the trained weights over "
             f"about the last {AGENT_AVERAGING} steps (momentum 0.999), and the run's agent is "
             f"the better of its two checkpoints: CartPole seeds 0-4 ended at 497, 468, 500, "
             f"480, 490 against 479, 473, 387, 487, 478 over 100 steps and 455, 433, 500 "
             f"(seeds 0-2) for the trained weights; a long average lags a fast-improving policy "
             f"(half-way: 160 and 309 on seeds 0 and 4), which the choice of checkpoint "
             f"passes over (agents on fresh episodes: 496, 494, 500, 485, 476 against 500, "
             f"467, 500, 500, 476 over 100 steps; docs/experiments.md)",
             agent_averaging=AGENT_AVERAGING)
    envs = 64
    rule(f"a self-play iteration is one game per slot ({envs} slots)",
         num_envs=envs, games_per_iteration=envs)
    samples = BOARD_SAMPLES_PER_POSITION if facts.board_game else SAMPLES_PER_POSITION
    steps = math.ceil(RUN_POSITIONS * samples / 256)
    reason = ("a board game's value target is one game's outcome, a noisy label learned over "
              "more passes (spiel:tic_tac_toe with 4 moves sampled, seeds 0 and 1: lines lost "
              "as O 54 and 102 at 16 samples a position, 6 and 0 at 42; docs/experiments.md)"
              if facts.board_game else "targets that bootstrap from the search's values")
    rule(f"training follows the positions played, {samples} samples each at batch 256, so "
         f"short early episodes and long late ones are trained on alike ({reason}); the run "
         f"ends after {RUN_POSITIONS:,} positions (the games' budget is no limit)",
         samples_per_position=float(samples), batch_size=256, num_steps=steps,
         num_games=RUN_POSITIONS)
    rule("two checkpoints, each evaluated", checkpoint_interval=max(1, steps // 2))
    most = 200_000_000 // (4 * size)  # positions in 200 MB of observations
    if facts.board_game:
        rule("the replay window holds the last quarter of the run's positions (at most 200 MB "
             "of observations): a board game's value target is the final outcome of the policy "
             "that played, which grows stale as the policy improves (measured on "
             "spiel:tic_tac_toe, docs/experiments.md)",
             replay_capacity=int(min(RUN_POSITIONS // 4, most)))
    else:
        rule("the replay window holds the last 100,000 positions (at most 200 MB of "
             "observations)", replay_capacity=int(min(100_000, most)))
    rule("evaluation over 100 games (per opponent)", num_eval_games=100)
    return Config(game=game, game_options=dict(options), **fields), why
