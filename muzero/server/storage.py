"""The server's state, one job per part over one SQLite database (WAL mode) in the data folder:

- `archive.GameArchive`: the acknowledged uploads of games, and the replay buffer over them;
- `versions.WeightVersions`: the weights (HDF5 files in `weights/`) and optimizer states, the
  newest, the agent's and the checkpoints' awaiting evaluation kept;
- `training_log.TrainingLog`: the losses and evaluations the trainer reports;
- `clients.ClientTable`: who played or trained recently (in memory, for the dashboard).

`Store` opens the folder (one server at a time: `folder.FolderLock`), keeps the run's config
(hyper-parameters as they were when the folder was created), and answers the HTTP API through
those parts. Everything a request may make the server hold is bounded: an upload's arrays by what
the replay window can use (read from the archive's headers before anything is inflated), log
entries in size, answers of the log in length, the table of recent clients in time and count.
"""

from __future__ import annotations

import math
import os
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from muzero.config import RUNTIME_FIELDS, Config
from muzero.network import network_for_game
from muzero.plugins import GamePlugin
from muzero.replay import StoredPositions, TrainingBatch
from muzero.selection import AgentSelection
from muzero.server import wire
from muzero.server.archive import MAX_BATCH_SIZE, GameArchive
from muzero.server.clients import ClientTable
from muzero.server.errors import StoreError
from muzero.server.folder import (
    DEFAULT_KEEP_GAMES,
    DEFAULT_KEEP_VERSIONS,
    KEEP_GAMES,
    FolderLock,
    remove_leftovers,
)
from muzero.server.training_log import TrainingLog
from muzero.server.versions import WeightsVersion, WeightVersions
from muzero.training import build_optimizer

DATABASE = "muzero.sqlite3"
WEIGHTS_DIR = "weights"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS uploads (
    id INTEGER PRIMARY KEY, upload_id TEXT UNIQUE NOT NULL, client TEXT NOT NULL,
    received REAL NOT NULL, first_game INTEGER NOT NULL, num_games INTEGER NOT NULL,
    first_position INTEGER NOT NULL, num_positions INTEGER NOT NULL, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS priorities (position_id INTEGER PRIMARY KEY, error REAL NOT NULL);
CREATE TABLE IF NOT EXISTS versions (
    version INTEGER PRIMARY KEY, step INTEGER NOT NULL, created REAL NOT NULL,
    weights TEXT NOT NULL, optimizer TEXT);
CREATE TABLE IF NOT EXISTS log (
    id INTEGER PRIMARY KEY, time REAL NOT NULL, step INTEGER NOT NULL, kind TEXT NOT NULL,
    data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS log_by_kind ON log (kind, step);
"""


class Store:
    """Everything the server keeps; every public method is safe to call from many threads."""

    def __init__(self, data_dir: str | os.PathLike, plugin: GamePlugin, config: Config,
                 warn: Callable[[str], None] | None = None,
                 keep_versions: int = DEFAULT_KEEP_VERSIONS,
                 keep_games: str = DEFAULT_KEEP_GAMES):
        if keep_versions < 1:
            raise ValueError(f"keep_versions (--keep-versions) must be >= 1: the newest "
                             f"weights serve self-play; got {keep_versions}")
        if keep_games not in KEEP_GAMES:
            raise ValueError(f"keep_games (--keep-games) must be one of {', '.join(KEEP_GAMES)}, "
                             f"got {keep_games!r}")
        self.keep_versions = keep_versions
        self.keep_games = keep_games
        # absolute: a relative folder would be resolved against whatever directory a library
        # call assumes (Flask's send_file takes the package's), not the user's
        self.data_dir = Path(data_dir).resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._folder_lock = FolderLock(self.data_dir)
        self._warn = warn or (lambda line: print(f"warning: {line}", file=sys.stderr))
        try:
            self._open(plugin, config)
        except BaseException:
            self._folder_lock.release()
            raise

    def _open(self, plugin: GamePlugin, config: Config) -> None:
        (self.data_dir / WEIGHTS_DIR).mkdir(exist_ok=True)
        for path in remove_leftovers(self.data_dir, self.data_dir / WEIGHTS_DIR):
            self._warn(f"removed {path.name}, left half-written by a server that was killed")
        self.plugin = plugin
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.data_dir / DATABASE, check_same_thread=False,
                                   isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # WAL: durable across a process kill
        self._db.executescript(SCHEMA)
        self.config = self._stored_config(config)
        network = network_for_game(plugin, self.config)  # checks uploaded weights
        optimizer = build_optimizer(self.config)  # checks uploaded optimizer states
        optimizer.build(network.trainable_variables)
        self.weights = WeightVersions(self._db, self._lock, self.data_dir / WEIGHTS_DIR,
                                      network, optimizer, self._warn)
        self.priority_limits = wire.ArchiveLimits(
            MAX_BATCH_SIZE * 12 + 2 * wire.NPY_HEADER_SLACK, max_members=2)
        self.started = time.time()
        self.clients = ClientTable()
        self.log = TrainingLog(self._db, self._lock)
        self.games = GameArchive(self._db, self._lock, plugin, self.config, self._warn,
                                 self.keep_games)
        self.replay = self.games.replay
        self.weights.check_on_disk()
        if self.weights.latest() is None:  # self-play can start before any training
            self.weights.save_initial()
        self._prune_weights()  # a folder of an older server, or of a larger --keep-versions

    def _stored_config(self, config: Config) -> Config:
        """The folder's config (its hyper-parameters, with this process's runtime options), or
        `config` saved as the folder's when it is new."""
        stored = _read_config(self._db)
        if stored is None:
            self._db.execute("INSERT INTO meta VALUES ('config', ?)", (config.to_json(),))
            return config
        if stored.game != config.game:
            raise StoreError(f"{self.data_dir} holds a run of game {stored.game!r}, not "
                             f"{config.game!r}")
        return stored.replace(**{name: getattr(config, name) for name in RUNTIME_FIELDS})

    # ----- the API's operations -----

    def add_games(self, data: bytes, upload_id: str | None = None,
                  client: str = "anonymous") -> dict:
        """Validate, commit, then buffer an upload (`GameArchive.add`); its acknowledgement."""
        ack, new = self.games.add(data, upload_id, client)
        if new:
            self.clients.record(client, "selfplay", time.time(), games=ack["games"])
        return ack

    def sample(self, batch_size: int, client: str = "anonymous") -> TrainingBatch:
        batch = self.games.sample(batch_size)
        self.clients.record(client, "train", time.time(), batches=1)
        return batch

    def update_priorities(self, indices: np.ndarray, errors: np.ndarray) -> int:
        return self.games.update_priorities(indices, errors)

    def positions_to_reanalyse(self, count: int) -> StoredPositions:
        return self.games.positions_to_reanalyse(count)

    def refresh_targets(self, position_ids: np.ndarray, policies: np.ndarray,
                        root_values: np.ndarray) -> int:
        return self.games.refresh_targets(position_ids, policies, root_values)

    def ingest_series(self, min_bin_seconds: float = 10.0) -> list[dict]:
        with self._lock:  # uploads append to it
            return self.games.ingest.bins(min_bin_seconds)

    def latest_weights(self) -> WeightsVersion | None:
        return self.weights.latest()

    def agent_weights(self) -> WeightsVersion | None:
        """The run's agent (muzero/selection.py, as synchronous mode chooses it): the weights
        of the best evaluation the trainer logged among steps that have weights, the later on
        ties; the latest weights before any evaluation. A logged entry that is not an
        evaluation of this version's form is no candidate. With agent averaging, the version's
        averaged weights: what the trainer evaluated."""
        step = self._agent_step(self.log.evaluations())
        if step is None:
            return self.weights.as_agent(self.latest_weights())
        return self.weights.as_agent(self.weights.at_step(step))

    def _agent_step(self, evaluations: list[tuple[int, dict]]) -> int | None:
        """The step `agent_weights` serves, from the log's `evaluations`; None before any."""
        selection = AgentSelection(self.config.agent_selection)
        with_weights = self.weights.steps()
        for step, evaluation in evaluations:
            if step not in with_weights:
                continue
            try:
                selection.consider(step, evaluation)
            except (AttributeError, KeyError, TypeError, ValueError):
                continue
        return selection.step

    def weights_version(self, version: int) -> WeightsVersion:
        return self.weights.get(version)

    def add_weights(self, weights: bytes, optimizer: bytes | None, step: int,
                    client: str = "anonymous") -> WeightsVersion:
        added = self.weights.add(weights, optimizer, step)
        self.clients.seen(client, "train", time.time())
        self._prune_weights()
        return added

    def _prune_weights(self) -> int:
        """Keep the newest `keep_versions` versions, the run's agent, and the checkpoints whose
        evaluation has not come yet (the trainer publishes a checkpoint's weights, then logs
        its evaluation). An evaluated checkpoint that is not the agent never becomes it: the
        agent only moves to a later checkpoint that scores at least as well (or, with
        `agent_selection = last`, to any later one). So a run keeps a bounded number of
        versions, as synchronous mode keeps its last two checkpoints and the agent."""
        evaluations = self.log.evaluations()
        agent = self._agent_step(evaluations)
        newest_evaluated = max((step for step, _ in evaluations), default=-1)
        awaiting_after = newest_evaluated if self.config.num_eval_games else math.inf
        interval, end = self.config.checkpoint_interval, self.config.num_steps
        return self.weights.prune(
            self.keep_versions,
            lambda step: step == agent or (step > awaiting_after
                                           and (step % interval == 0 or step == end)))

    def append_log(self, kind: str, step: int, data: dict) -> None:
        self.log.append(kind, step, data)

    def training_log(self, since_id: int = 0, limit: int = 1000) -> tuple[list[dict], bool]:
        return self.log.page(since_id, limit)

    def stats(self) -> dict:
        latest = self.latest_weights()
        now = time.time()
        with self._lock:
            replay = self.replay
            return {"game": self.config.game, "players": replay.num_players,
                    "version": latest.version if latest else 0,
                    "step": latest.step if latest else 0,
                    "games": replay.total_games, "positions": replay.total_positions,
                    "buffer_games": replay.num_games, "buffer_positions": replay.num_positions,
                    "batches_served": self.games.batches_served,
                    "num_games": self.config.num_games, "num_steps": self.config.num_steps,
                    "uptime_seconds": round(now - self.started, 1),
                    "clients": self.clients.recent(now)}

    def close(self) -> None:
        with self._lock:
            self._db.close()
        self._folder_lock.release()


def _read_config(db: sqlite3.Connection) -> Config | None:
    row = db.execute("SELECT value FROM meta WHERE key = 'config'").fetchone()
    return None if row is None else Config.from_json(row[0])


def stored_config(data_dir: str | os.PathLike) -> Config | None:
    """The config of the run a data folder holds, or None for a new folder."""
    if Path(data_dir).exists() and not Path(data_dir).is_dir():
        raise ValueError(f"{data_dir} is a file, not a data folder: give another --data-dir")
    path = Path(data_dir) / DATABASE
    if not path.exists():
        return None
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(SCHEMA)
        return _read_config(db)
    except sqlite3.DatabaseError as error:  # left unchanged: the server refuses to start
        raise ValueError(f"{path}: not a readable SQLite database ({error}); restore the "
                         f"folder from a backup or give another --data-dir") from None
    finally:
        db.close()
