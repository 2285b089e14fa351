"""The self-play and training clients: the actor and learner rounds of synchronous mode, wired
to the server through `HttpClient`, with synchronous mode's evaluation and reporters.

Both take the run's config from the server (with the command line's overrides on top), so every
process of a run agrees on the game and the network. Both keep the run's ratio of training
steps to games (`num_steps * games / num_games`, the pace of synchronous mode), each waiting
when it is ahead: a fast trainer would overfit the first games, and fast self-play would fill the
buffer with games of old weights. Self-play may run `games_per_iteration` games ahead of the
training, as one iteration of synchronous mode does. Self-play stops when the server holds
`num_games` games, training when it reaches `num_steps`.

The learner round fetches each batch while the previous one trains (`loops.Prefetcher` with
`priority_lag` 1), so the HTTP round trips overlap the train steps: a batch's round trip takes
9-19 ms on loopback against a train step of about 20 ms (docs/performance.md); overlapping
saves it on every step, for priorities that reach the buffer one draw late.
Synchronous mode, whose draw costs 1.2-1.6 ms, keeps them fresh.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from tqdm import tqdm

from muzero.batching.inference import inference_for_game
from muzero.batching.selfplay import SelfPlayReport
from muzero.checkpoint import OPTIMIZER, Checkpoint, optimizer_variables
from muzero.config import Config
from muzero.loops import Actor, Evaluator, LocalWeights, Reanalyser, learner_round
from muzero.network import network_for_game
from muzero.pace import Pace
from muzero.plugins import GamePlugin
from muzero.records import GameRecord
from muzero.replay import stored_games
from muzero.reporting import (
    CheckpointRecord,
    Reporter,
    Reporters,
    TensorBoardReporter,
    TerminalReporter,
    TrainingRound,
)
from muzero.server.client import HttpClient, HttpWeights
from muzero.server.wire import read_npz
from muzero.stopwatch import Stopwatch
from muzero.training import Learner

Log = Callable[[str], None]


def run_selfplay(client: HttpClient, plugin: GamePlugin, config: Config,
                 games_per_upload: int, max_games: int | None = None, seed: int | None = None,
                 log: Log = tqdm.write, progress_bars: bool | None = None,
                 poll_seconds: float = 0.5) -> int:
    """Play and upload until the server holds the run's games (or `max_games` are played here).
    Returns the games this client played."""
    actor = Actor(plugin, config, inference_for_game(plugin, config))
    weights = HttpWeights(client, actor.network)
    seed = int.from_bytes(os.urandom(4), "little") if seed is None else seed
    played = rounds = 0
    bar = tqdm(desc="self-play", unit="game", disable=None if progress_bars is None
               else not progress_bars, dynamic_ncols=True)
    stats = client.stats()
    pace = Pace(config)
    while pace.selfplay_needed(stats["games"], stats["positions"]) and (
            max_games is None or played < max_games):
        if pace.selfplay_ahead(stats["games"], stats["positions"], stats["step"]):
            time.sleep(poll_seconds)  # ahead of training: wait for new weights
            stats = client.stats()
            continue
        games = games_per_upload if max_games is None else min(games_per_upload,
                                                               max_games - played)
        report = actor.round(client, weights, games, seed=(seed, rounds), progress=bar.update)
        stats = client.stats()
        stored = stats["games"]
        played += games
        rounds += 1
        log(f"uploaded {games} games (weights v{actor.version}, step {weights.step}) | "
            f"{report.positions_per_second:.0f} positions/s | server holds {stored}/"
            f"{config.num_games} games")
    bar.close()
    return played


class ServerLogReporter:
    """The server's training log (its dashboard's loss and evaluation curves)."""

    def __init__(self, client: HttpClient):
        self.client = client

    def trained(self, round: TrainingRound) -> None:
        self.client.append_log("losses", round.step, {
            **round.losses, "steps_per_second": round.steps_per_second, "games": round.games})

    def played(self, step: int, report: SelfPlayReport, games: int,
               buffer_positions: int) -> None:
        pass

    def checkpointed(self, record: CheckpointRecord) -> None:
        if record.evaluation is not None:
            self.client.append_log("evaluation", record.step, record.evaluation)


class Trainer:
    """The learner of an async run: resumes from the server's latest weights and optimizer
    state, trains in rounds of at most `publish_interval` steps, publishing after each (and
    reanalysing stored games after each when `reanalyse_ratio` asks for it), and evaluates at
    the run's checkpoints; reports like synchronous mode (terminal line,
    TensorBoard under `log_dir`) and to the server's log."""

    def __init__(self, client: HttpClient, plugin: GamePlugin, config: Config,
                 publish_interval: int, log_dir: Path | None = None, log: Log = tqdm.write,
                 poll_seconds: float = 1.0):
        self.client = client
        self.plugin = plugin
        self.config = config
        self.pace = Pace(config)
        self.publish_interval = publish_interval
        self.log = log
        self.poll_seconds = poll_seconds
        self.learner = Learner(network_for_game(plugin, config), config)
        self.weights = HttpWeights(client, self.learner.network, self.learner.optimizer_state)
        inference = inference_for_game(plugin, config)
        self.evaluator = Evaluator(plugin, config, inference)
        self.reanalyser = Reanalyser(plugin, config, inference)  # searches on its network
        self.newest = LocalWeights()  # the learner's weights, for the reanalyser
        self.seconds = Stopwatch()
        self._resume()
        # positions played before this trainer started are owed no reanalysis
        self.reanalyser.reanalysed = int(config.reanalyse_ratio * client.stats()["positions"])
        reporters: list[Reporter] = [TerminalReporter(log, config.num_steps),
                                     ServerLogReporter(client)]
        if log_dir is not None:
            reporters.append(TensorBoardReporter(log_dir, config.to_json(), self.learner.step))
        self.reporter = Reporters(reporters)

    def _resume(self) -> None:
        version, _ = self.weights.latest(None)
        optimizer = self.client.optimizer_state(version)
        if optimizer is not None:
            self.learner.set_optimizer_state(optimizer_variables(read_npz(optimizer,
                                                                          "optimizer")))
        else:  # weights without optimizer state (initial or uploaded): keep the LR schedule
            self.learner.optimizer.iterations.assign(self.weights.step)
        if self.learner.step:
            self.log(f"resuming at step {self.learner.step} from weights v{version}")

    def run(self, progress_bars: bool | None = None) -> dict | None:
        config = self.config
        bar = tqdm(total=config.num_steps, initial=self.learner.step, desc="train", unit="step",
                   disable=None if progress_bars is None else not progress_bars,
                   dynamic_ncols=True)
        evaluation = None
        self.seconds.reset()
        while self.learner.step < config.num_steps:
            stats = self.client.stats()
            games = stats["games"]
            step = self.learner.step
            allowed = self.pace.steps_allowed(games, stats["positions"]) if games else 0
            if allowed <= step:
                time.sleep(self.poll_seconds)  # ahead of self-play: wait for games
                self.seconds.lap("waiting")
                continue
            steps = min(self.publish_interval, allowed - step,
                        self.pace.next_checkpoint(step) - step)
            started = time.perf_counter()
            losses = learner_round(self.learner, self.client, self.weights, steps, bar.update,
                                   priority_lag=1)
            self.seconds.lap("training")
            self.newest.publish(self.learner.network.get_weights(), self.learner.step)
            if self.reanalyser.round(self.client, self.newest, stats["positions"]):
                self.seconds.lap("reanalysis")
            self.reporter.trained(TrainingRound(
                self.learner.step, losses, steps / (time.perf_counter() - started),
                float(self.learner.optimizer.learning_rate), config.batch_size, games))
            if (self.pace.checkpoint_crossed(step, self.learner.step)
                    or self.learner.step >= config.num_steps):
                evaluation = self.evaluator.evaluate(self.learner.agent_weights())
                self.seconds.lap("evaluation")
                phases = dict(self.seconds.totals)
                self.reporter.checkpointed(CheckpointRecord(
                    step=self.learner.step, games=games, positions=stats["positions"],
                    seconds=sum(phases.values()), phase_seconds=phases, losses=losses,
                    evaluation=evaluation, checkpoint=None))
        bar.close()
        return evaluation


def upload_checkpoint(client: HttpClient, checkpoint: Checkpoint, log: Log = print) -> int:
    """Send a synchronous-mode checkpoint to a server: its replay window (whole games, oldest
    first, with their current priorities), then its weights and optimizer state. Returns the
    new weights version."""
    chunk: list[GameRecord] = []
    chunk_errors: list[np.ndarray] = []
    uploaded = 0

    def send() -> None:
        nonlocal uploaded
        ack = client.add_games(chunk)
        errors = np.concatenate(chunk_errors)
        client.update_priorities(ack["first_position"] + np.arange(len(errors)),
                                 errors.astype(np.float32))
        uploaded += len(chunk)
        chunk.clear()
        chunk_errors.clear()

    for record, errors in stored_games(checkpoint.replay_arrays(),
                                       checkpoint.config.priority_alpha):
        chunk.append(record)
        chunk_errors.append(errors)
        if len(chunk) == 512:
            send()
    if chunk:
        send()
    log(f"uploaded {uploaded} games")
    optimizer = checkpoint.path / OPTIMIZER
    version = client.upload_weights(checkpoint.weights_path.read_bytes(), checkpoint.step,
                                    optimizer.read_bytes() if optimizer.exists() else None)
    log(f"uploaded weights of step {checkpoint.step} as version {version}")
    return version
