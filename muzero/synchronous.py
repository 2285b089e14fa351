"""Synchronous mode: self-play and training take turns in one process, then the agent is evaluated.

Iteration i plays `games_per_iteration` games (seeded by the run's seed and i), reanalyses stored
games when `reanalyse_ratio` asks for it (loops.Reanalyser), then trains until
the step count keeps pace with the games played (`num_steps * games_played / num_games`), so the
run's two budgets end together. Each crossing of a multiple of `checkpoint_interval` steps, and the
end of the run, evaluates the agent and writes a checkpoint. Ctrl-C writes a checkpoint too
(see `run`).
Resuming from a checkpoint continues exactly: same weights, optimizer, replay buffer, priorities,
generator states and counters.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from tqdm import tqdm

from muzero.batching.inference import inference_for_game
from muzero.checkpoint import Checkpoint, save_checkpoint
from muzero.config import Config
from muzero.interrupt import stop_on_ctrl_c
from muzero.loops import Actor, Evaluator, LocalWeights, Reanalyser, learner_round
from muzero.network import network_for_game
from muzero.pace import Pace
from muzero.plugins import GamePlugin
from muzero.replay import ReplayBuffer
from muzero.reporting import (
    CheckpointRecord,
    JsonlReporter,
    Reporters,
    TensorBoardReporter,
    TerminalReporter,
    TrainingRound,
)
from muzero.selection import AgentSelection
from muzero.stopwatch import Stopwatch
from muzero.symmetry import symmetries_from_plugin
from muzero.training import Learner

STOPPING = ("Ctrl-C: stopping at the next safe point, with a checkpoint "
            "(Ctrl-C again quits at once, keeping the last checkpoint)")


class SynchronousRun:
    """One run's state: learner, actor, replay buffer, counters, run folder."""

    def __init__(self, plugin: GamePlugin, config: Config, run_dir: Path,
                 checkpoint: Checkpoint | None = None, progress_bars: bool | None = None,
                 log: Callable[[str], None] = tqdm.write):
        self.plugin = plugin
        self.config = config
        self.run_dir = Path(run_dir)
        self.progress_bars = progress_bars
        self.log = log
        self.learner = Learner(network_for_game(plugin, config), config)
        inference = inference_for_game(plugin, config)
        self.actor = Actor(plugin, config, inference)
        self.evaluator = Evaluator(plugin, config, inference)  # plays on the actor's network
        self.reanalyser = Reanalyser(plugin, config, inference)  # searches on it too
        game = plugin.make_game(config, np.random.default_rng(0))
        self.replay = ReplayBuffer(config, game.observation_shape, game.num_actions,
                                   game.num_players, np.random.default_rng([config.seed, 1]),
                                   symmetries_from_plugin(plugin, config))
        self.weights = LocalWeights()
        self.games_played = 0
        self.pace = Pace(config)
        self.iteration = 0
        self.seconds = Stopwatch()
        self.previous_seconds: dict[str, float] = {}  # time of the run before a resume
        self.last_evaluation: dict | None = None
        self.selection = AgentSelection(config.agent_selection)
        self.interrupted = False
        if checkpoint is not None:
            self._restore(checkpoint)
        self.weights.publish(self.learner.network.get_weights(), self.learner.step)
        self.reporter = Reporters([
            TerminalReporter(log, config.num_steps), JsonlReporter(self.run_dir),
            TensorBoardReporter(self.run_dir, config.to_json(), self.learner.step)])

    # ----- state -----

    def _restore(self, checkpoint: Checkpoint) -> None:
        self.learner.network.load_weights_file(checkpoint.weights_path)
        self.learner.set_optimizer_state(checkpoint.optimizer_state())
        self.replay.restore(checkpoint.replay_arrays(), checkpoint.meta["replay"])
        self.games_played = int(checkpoint.meta["games_played"])
        self.iteration = int(checkpoint.meta["iteration"])
        self.previous_seconds = dict(checkpoint.meta.get("seconds", {}))
        self.last_evaluation = checkpoint.meta.get("evaluation")
        self.selection = AgentSelection.restored(self.config.agent_selection,
                                                 checkpoint.meta.get("agent"))
        if "reanalysis" in checkpoint.meta:  # checkpoints before Reanalyse have none
            self.reanalyser.restore(checkpoint.meta["reanalysis"])

    def phase_seconds(self) -> dict[str, float]:
        phases = dict(self.previous_seconds)
        for phase, seconds in self.seconds.totals.items():
            phases[phase] = phases.get(phase, 0.0) + seconds
        return phases

    def save(self) -> Path:
        """Checkpoint the current state (without evaluating)."""
        arrays, replay_meta = self.replay.state()
        meta = {"config": self.config.to_json(), "game": self.config.game,
                "games_played": self.games_played, "iteration": self.iteration,
                "replay": replay_meta, "seconds": self.phase_seconds(),
                "evaluation": self.last_evaluation, "agent": self.selection.state(),
                "reanalysis": self.reanalyser.state()}
        path = save_checkpoint(self.run_dir, self.learner.step, meta,
                               self.learner.network.save_weights_file,
                               self.learner.optimizer_state(), arrays,
                               agent_step=self.selection.step,
                               save_agent_weights=(self.learner.save_agent_weights_file
                                                   if self.learner.averaging else None))
        self.seconds.lap("checkpoint")
        return path

    @property
    def finished(self) -> bool:
        return self.pace.finished(self.games_played, self.replay.total_positions,
                                  self.learner.step)

    # ----- the run -----

    def run(self) -> dict | None:
        """Train to the end, or until Ctrl-C, and return the last evaluation.

        The first Ctrl-C stops self-play within a move (its round is dropped and replays on
        resume) or lets the training round and its checkpoint finish, then writes a checkpoint
        and sets `interrupted`; a second Ctrl-C raises KeyboardInterrupt at once, leaving the
        last checkpoint written.
        """
        config = self.config
        train_bar = tqdm(total=config.num_steps, initial=self.learner.step, desc="train",
                         unit="step", disable=self._bars_disabled(), dynamic_ncols=True)
        self.seconds.reset()
        with stop_on_ctrl_c(STOPPING) as stop:
            while not self.finished and not stop.is_set():
                self._iteration(train_bar, stop)
            train_bar.close()
            if stop.is_set() and not self.finished:  # a Ctrl-C during the last round: done
                self.interrupted = True
                self.log(f"interrupted: checkpoint written to {self.save()}")
        return self.last_evaluation

    def _bars_disabled(self) -> bool | None:
        return None if self.progress_bars is None else not self.progress_bars

    def _iteration(self, train_bar: tqdm, stop: threading.Event) -> None:
        config = self.config
        step_before = self.learner.step
        games = (min(config.games_per_iteration, config.num_games - self.games_played)
                 if self.pace.selfplay_needed(self.games_played, self.replay.total_positions)
                 else 0)
        report = None
        if games > 0:
            with tqdm(total=games, desc="self-play", unit="game", leave=False,
                      disable=self._bars_disabled(), dynamic_ncols=True) as bar:
                report = self.actor.round(self.replay, self.weights, games,
                                          seed=(config.seed, self.iteration),
                                          progress=bar.update, stop=stop)
            if report is None:
                return
            self.games_played += games
            self.seconds.lap("self-play")
            if self.reanalyser.round(self.replay, self.weights, self.replay.total_positions):
                self.seconds.lap("reanalysis")
        steps = (self.pace.steps_allowed(self.games_played, self.replay.total_positions)
                 - self.learner.step)
        losses = None
        if steps > 0:
            started = time.perf_counter()
            losses = learner_round(self.learner, self.replay, self.weights, steps,
                                   train_bar.update)
            self.seconds.lap("training")
            self.reporter.trained(TrainingRound(
                self.learner.step, losses, steps / (time.perf_counter() - started),
                float(self.learner.optimizer.learning_rate), config.batch_size,
                self.games_played - games))
        if report is not None:
            self.reporter.played(self.learner.step, report, self.games_played,
                                 self.replay.num_positions)
        self.iteration += 1
        if self.finished or self.pace.checkpoint_crossed(step_before, self.learner.step):
            self._checkpoint_and_evaluate(losses)

    def _checkpoint_and_evaluate(self, losses: dict | None) -> None:
        evaluation = self.evaluator.evaluate(self.learner.agent_weights())
        if evaluation is not None:
            self.seconds.lap("evaluation")
        self.last_evaluation = evaluation
        self.selection.consider(self.learner.step, evaluation)
        path = self.save()
        phases = self.phase_seconds()
        self.reporter.checkpointed(CheckpointRecord(
            step=self.learner.step, games=self.games_played,
            positions=self.replay.total_positions, seconds=sum(phases.values()),
            phase_seconds=phases, losses=losses, evaluation=evaluation, checkpoint=path.name))
