"""What a run tells the people watching it, written once for both modes.

A run (synchronous, or the asynchronous trainer) calls three events on one `Reporter`: a training
round ended, a self-play round ended, a checkpoint was evaluated. Each destination is one
reporter: the terminal line, TensorBoard, `evaluations.jsonl` in the run folder, the server's
training log (its dashboard). `Reporters` sends every event to several, so both modes write
TensorBoard the same way and format the same checkpoint line.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import tensorflow as tf

from muzero.batching.selfplay import SelfPlayReport
from muzero.checkpoint import append_jsonl

EVALUATIONS = "evaluations.jsonl"
LOSSES_SHOWN = ("value", "reward", "policy", "to_play")


@dataclasses.dataclass(frozen=True)
class TrainingRound:
    """One learner round: the mean losses of its steps and how fast they went."""

    step: int  # training steps after the round
    losses: dict[str, float]
    steps_per_second: float
    learning_rate: float
    batch_size: int
    games: int  # games the run had played when the round started


@dataclasses.dataclass(frozen=True)
class CheckpointRecord:
    """A checkpoint's line in evaluations.jsonl: where the run stood and how the agent did."""

    step: int
    games: int
    positions: int
    seconds: float  # the run's time so far, resumed runs included
    phase_seconds: dict[str, float]
    losses: dict[str, float] | None  # of the round that reached the checkpoint
    evaluation: dict[str, Any] | None  # evaluation.evaluate's result, None without games
    checkpoint: str | None  # the checkpoint folder's name (None: weights kept by a server)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class Reporter(Protocol):
    def trained(self, round: TrainingRound) -> None: ...

    def played(self, step: int, report: SelfPlayReport, games: int,
               buffer_positions: int) -> None: ...

    def checkpointed(self, record: CheckpointRecord) -> None: ...


def summary_line(record: CheckpointRecord, num_steps: int,
                 positions_per_second: float | None = None) -> str:
    """The terminal's line at a checkpoint: progress, losses, speed, evaluation, time."""
    parts = [f"step {record.step}/{num_steps}", f"games {record.games}"]
    if record.losses:
        parts.append("loss " + " ".join(f"{name} {record.losses[name]:.3f}"
                                        for name in LOSSES_SHOWN))
    if positions_per_second is not None:
        parts.append(f"{positions_per_second:.0f} positions/s")
    train_seconds = record.phase_seconds.get("training", 0.0)
    if train_seconds:
        parts.append(f"{record.step / train_seconds:.1f} steps/s")
    if record.evaluation:
        parts.append(record.evaluation["summary"])
    total = record.seconds or 1.0
    shares = ", ".join(f"{phase} {seconds / total:.0%}"
                       for phase, seconds in record.phase_seconds.items())
    parts.append(f"{record.seconds:.0f} s" + (f" ({shares})" if shares else ""))
    return " | ".join(parts)


class TerminalReporter:
    """The checkpoint line, through `log` (tqdm.write keeps progress bars intact)."""

    def __init__(self, log: Callable[[str], None], num_steps: int):
        self.log = log
        self.num_steps = num_steps
        self._positions_per_second: float | None = None

    def trained(self, round: TrainingRound) -> None:
        pass

    def played(self, step: int, report: SelfPlayReport, games: int,
               buffer_positions: int) -> None:
        self._positions_per_second = report.positions_per_second

    def checkpointed(self, record: CheckpointRecord) -> None:
        self.log(summary_line(record, self.num_steps, self._positions_per_second))
        self._positions_per_second = None


class JsonlReporter:
    """One JSON line per checkpoint in the run folder's evaluations.jsonl."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / EVALUATIONS

    def trained(self, round: TrainingRound) -> None:
        pass

    def played(self, step: int, report: SelfPlayReport, games: int,
               buffer_positions: int) -> None:
        pass

    def checkpointed(self, record: CheckpointRecord) -> None:
        append_jsonl(self.path, record.to_json())


class TensorBoardReporter:
    """Curves for TensorBoard: losses, throughput, self-play statistics, evaluations."""

    def __init__(self, log_dir: Path, config_json: str, step: int):
        Path(log_dir).mkdir(parents=True, exist_ok=True)
        self.writer = tf.summary.create_file_writer(str(log_dir))
        with self.writer.as_default():
            tf.summary.text("config", f"```\n{config_json}\n```", step=step)

    def trained(self, round: TrainingRound) -> None:
        step = round.step
        with self.writer.as_default():
            for name, value in round.losses.items():
                tf.summary.scalar(f"loss/{name}", value, step=step)
            tf.summary.scalar("throughput/train_steps_per_second", round.steps_per_second,
                              step=step)
            tf.summary.scalar("throughput/positions_trained_per_second",
                              round.steps_per_second * round.batch_size, step=step)
            tf.summary.scalar("learning_rate", round.learning_rate, step=step)

    def played(self, step: int, report: SelfPlayReport, games: int,
               buffer_positions: int) -> None:
        lengths = [len(game) for game in report.games]
        returns = np.stack([game.total_rewards() for game in report.games])
        total = sum(report.phase_seconds.values())
        with self.writer.as_default():
            tf.summary.scalar("selfplay/games", games, step=step)
            tf.summary.scalar("selfplay/mean_game_length", float(np.mean(lengths)), step=step)
            for player, value in enumerate(returns.mean(axis=0)):
                tf.summary.scalar(f"selfplay/mean_return_player_{player}", float(value),
                                  step=step)
            tf.summary.scalar("throughput/selfplay_positions_per_second",
                              report.positions_per_second, step=step)
            if total:
                for phase in ("network", "environment"):
                    tf.summary.scalar(f"throughput/selfplay_{phase}_share",
                                      report.phase_seconds.get(phase, 0.0) / total, step=step)
            tf.summary.scalar("replay/positions", buffer_positions, step=step)

    def checkpointed(self, record: CheckpointRecord) -> None:
        evaluation, step = record.evaluation, record.step
        if evaluation is None:
            return
        with self.writer.as_default():
            if "returns" in evaluation:
                result = evaluation["returns"]
                tf.summary.scalar("evaluation/mean_return", result["mean"], step=step)
                tf.summary.scalar("evaluation/return_stderr", result["stderr"], step=step)
            for opponent, seats in evaluation.get("matches", {}).items():
                for seat, result in enumerate(seats):
                    games = max(sum(result.values()), 1)
                    for outcome in ("wins", "draws", "losses"):
                        tf.summary.scalar(f"evaluation/{opponent}/seat_{seat}_{outcome}",
                                          result[outcome] / games, step=step)
            tf.summary.text("evaluation/summary", evaluation["summary"], step=step)
        self.writer.flush()


class Reporters:
    """Every event to each of several reporters, in order."""

    def __init__(self, reporters: Sequence[Reporter]):
        self.reporters = list(reporters)

    def trained(self, round: TrainingRound) -> None:
        for reporter in self.reporters:
            reporter.trained(round)

    def played(self, step: int, report: SelfPlayReport, games: int,
               buffer_positions: int) -> None:
        for reporter in self.reporters:
            reporter.played(step, report, games, buffer_positions)

    def checkpointed(self, record: CheckpointRecord) -> None:
        for reporter in self.reporters:
            reporter.checkpointed(record)
