"""How training keeps pace with self-play: one rule for both modes.

A run has two budgets, `num_steps` training steps and `num_games` self-play games. By default the
steps are spread over the games in proportion (`steps = num_steps * games / num_games`), which
suits games of a fixed length. With `samples_per_position` > 0 the steps follow the positions
played instead (`steps = samples_per_position * positions / batch_size`, the replay ratio), so
that an environment whose episodes grow from 10 moves to 500 as the agent learns is trained on
each position about as often early as late; self-play then stops once the positions pay for
every step (or `num_games` is reached, which releases the remaining steps).

Checkpoints (each one evaluated) fall on multiples of `checkpoint_interval` steps and at the end
of the run, whichever mode crosses them.
"""

from __future__ import annotations

from muzero.config import Config


class Pace:
    """Steps allowed, self-play needed and self-play ahead, from the run's counters."""

    def __init__(self, config: Config):
        self.num_steps = config.num_steps
        self.num_games = config.num_games
        self.games_per_iteration = config.games_per_iteration
        self.samples_per_position = config.samples_per_position
        self.batch_size = config.batch_size
        self.checkpoint_interval = config.checkpoint_interval

    @property
    def by_positions(self) -> bool:
        return self.samples_per_position > 0

    def steps_allowed(self, games: int, positions: int) -> int:
        """Training steps that `games` games of `positions` positions in all pay for."""
        if games >= self.num_games:
            return self.num_steps
        if self.by_positions:
            return min(self.num_steps,
                       int(positions * self.samples_per_position // self.batch_size))
        return self.num_steps * games // self.num_games

    def selfplay_needed(self, games: int, positions: int) -> bool:
        """Whether the run still needs games."""
        return (games < self.num_games
                and (not self.by_positions
                     or self.steps_allowed(games, positions) < self.num_steps))

    def selfplay_ahead(self, games: int, positions: int, step: int) -> bool:
        """Whether self-play is more than one iteration of games ahead of training at `step`
        (async self-play then waits for new weights)."""
        if self.by_positions:
            per_game = positions / games if games else 0.0
            ahead = self.games_per_iteration * per_game * self.samples_per_position \
                / self.batch_size
            return self.steps_allowed(games, positions) >= step + max(ahead, 1.0)
        return games >= self.num_games * step // max(self.num_steps, 1) + self.games_per_iteration

    def finished(self, games: int, positions: int, step: int) -> bool:
        return step >= self.num_steps and not self.selfplay_needed(games, positions)

    def next_checkpoint(self, step: int) -> int:
        """The first multiple of the interval after `step`: a training round stops there."""
        return (step // self.checkpoint_interval + 1) * self.checkpoint_interval

    def checkpoint_crossed(self, step_before: int, step_after: int) -> bool:
        """Whether training from `step_before` to `step_after` reached a multiple of the
        interval."""
        interval = self.checkpoint_interval
        return step_after // interval > step_before // interval
