"""The server's state: a durable record in SQLite (WAL mode) and HDF5 files, and the in-memory
replay buffer that sampling uses.

An upload of games is validated in full, committed to SQLite as the bytes received, and only
then added to the buffer and acknowledged, so a server killed at any moment has every game it
acknowledged. At start-up the buffer is rebuilt from the newest uploads that fill its window,
numbered as before, and the priorities the learner reported are applied again: the same buffer,
the same priorities. SQLite is the record; sampling never touches it.

Weights are `weights/vNNNNNN.weights.h5` (plus the learner's optimizer state as
`vNNNNNN.optimizer.npz` when it sends one), written to a temporary file, checked against the
game's network (shapes, finite values; the optimizer state against the optimizer of that
network), fsynced and renamed before their row is committed. Version numbers only grow, even
past a version dropped at start-up because its file was lost.

Everything a request may make the server hold is bounded: an upload's arrays by what the replay
window can use (read from the archive's headers before anything is inflated), log entries in
size, answers of the log in length, the table of recent clients in time and count.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from muzero.config import Config
from muzero.network import network_for_game
from muzero.plugins import GamePlugin
from muzero.records import check_rewards, check_rules, check_time_limit
from muzero.replay import ReplayBuffer, TrainingBatch
from muzero.server import wire
from muzero.server.errors import MAX_ID, StoreError
from muzero.server.folder import FolderLock, remove_leftovers
from muzero.server.versions import WeightsVersion, WeightVersions
from muzero.symmetry import symmetries_from_plugin
from muzero.training import build_optimizer

DATABASE = "muzero.sqlite3"
WEIGHTS_DIR = "weights"
CLIENT_WINDOW_SECONDS = 60.0
MAX_CLIENTS = 1000  # clients remembered for the dashboard; the least recently seen go first
MAX_LOG_ENTRY_BYTES = 64 * 1024
MAX_LOG_PAGE = 10_000
MAX_INGEST_BINS = 500
MAX_UPLOAD_BYTES = 48 * 1024 * 1024  # an upload's arrays, uncompressed, whatever the window
MAX_BATCH_SIZE = 65536

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
"""

LOG_KINDS = ("losses", "evaluation")


@dataclass
class ClientActivity:
    """What one client did recently, for the dashboard."""

    kind: str
    last_seen: float
    events: deque = field(default_factory=deque)  # (time, games, batches)

    def record(self, now: float, games: int = 0, batches: int = 0) -> None:
        self.last_seen = now
        self.events.append((now, games, batches))
        while self.events and self.events[0][0] < now - CLIENT_WINDOW_SECONDS:
            self.events.popleft()

    def rates(self, now: float) -> dict[str, float]:
        recent = [event for event in self.events if event[0] >= now - CLIENT_WINDOW_SECONDS]
        span = CLIENT_WINDOW_SECONDS
        return {"games_per_second": sum(e[1] for e in recent) / span,
                "batches_per_second": sum(e[2] for e in recent) / span}


class Store:
    """Everything the server keeps; every public method is safe to call from many threads."""

    def __init__(self, data_dir: str | os.PathLike, plugin: GamePlugin, config: Config,
                 warn: Callable[[str], None] | None = None):
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
        sample_game = plugin.make_game(self.config, np.random.default_rng(0))
        self.network = network_for_game(plugin, self.config)  # checks uploaded weights
        optimizer = build_optimizer(self.config)  # checks uploaded optimizer states
        optimizer.build(self.network.trainable_variables)
        self.weights = WeightVersions(self._db, self._lock, self.data_dir / WEIGHTS_DIR,
                                      self.network, list(optimizer.variables), self._warn)
        self.replay = ReplayBuffer(self.config, tuple(sample_game.observation_shape),
                                   sample_game.num_actions, sample_game.num_players,
                                   np.random.default_rng([self.config.seed, 2]),
                                   symmetries_from_plugin(plugin, self.config))
        self.upload_limits = self._upload_limits(sample_game)
        self.priority_limits = wire.ArchiveLimits(
            MAX_BATCH_SIZE * 12 + 2 * wire.NPY_HEADER_SLACK, max_members=2)
        self._rules_rng = np.random.default_rng(0)  # chance in replayed games is not compared
        self.batches_served = 0
        self.started = time.time()
        self.clients: dict[str, ClientActivity] = {}
        self._rebuild_replay()
        self.weights.check_on_disk()
        if self.weights.latest() is None:  # self-play can start before any training
            self.weights.save_initial()

    def _upload_limits(self, game) -> wire.ArchiveLimits:
        """An upload may carry at most a replay window of positions (longer games are refused
        anyway), at the bytes per position of this game's arrays."""
        values = (int(np.prod(game.observation_shape)) + 1 + game.num_players + 1
                  + game.num_players + game.num_actions + 2)  # `lengths`, `truncated`
        arrays = len(wire.GAME_FIELDS) + 2
        needed = self.replay.capacity * values * 4 + wire.NPY_HEADER_SLACK * arrays
        return wire.ArchiveLimits(min(needed, MAX_UPLOAD_BYTES), max_members=arrays)

    # ----- configuration -----

    def _stored_config(self, config: Config) -> Config:
        stored = _read_config(self._db)
        if stored is None:
            self._db.execute("INSERT INTO meta VALUES ('config', ?)", (config.to_json(),))
            return config
        if stored.game != config.game:
            raise StoreError(f"{self.data_dir} holds a run of game {stored.game!r}, not "
                             f"{config.game!r}")
        return stored

    # ----- games -----

    def _rebuild_replay(self) -> None:
        """Refill the buffer from the newest uploads that fill its window (read newest first,
        stopping there: older uploads stay on disk), with the priorities reported since.

        Each upload is checked again, as a new one would be: one stored by an older server
        that checked less (rewards, overflowing targets) is skipped with a warning, its
        positions' ids left unused, so that it cannot poison training after a restart."""
        rows = self._db.execute("SELECT first_game, num_games, first_position, num_positions, "
                                "data FROM uploads ORDER BY id DESC")
        window, positions = [], 0
        for row in rows:
            window.append(row)
            positions += row[3]
            if positions >= self.replay.capacity:
                break
        rows.close()
        if not window:
            return
        oldest = window[-1]
        self.replay.start_counting_at(oldest[2], oldest[0])
        for first_game, num_games, _, num_positions, data in reversed(window):
            try:
                checked = self.validate_games(data)
            except StoreError as error:
                self._warn(f"stored games {first_game}..{first_game + num_games - 1} left out "
                           f"of the replay buffer: {error}")
                self.replay.skip(num_positions, num_games)
                continue
            self.replay.add_checked(*checked)
        if not self.replay.games:
            return
        first = self.replay.games[0][0]
        stored = self._db.execute("SELECT position_id, error FROM priorities "
                                  "WHERE position_id >= ?", (first,)).fetchall()
        if stored:
            ids, errors = np.array(stored).T
            self.replay.update_priorities(ids.astype(np.int64), errors)

    def validate_games(self, data: bytes) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """An upload's games as the replay buffer's `check` returns them (lengths [G], rows
        concatenated, with their value targets), or `StoreError` naming the first problem."""
        try:
            games = wire.decode_games(data, self.upload_limits)
            checked = self.replay.check(games)
        except ValueError as error:  # WireError included
            raise StoreError(str(error)) from None
        environment = self.plugin.make_game(self.config, self._rules_rng)
        replayed = []
        for number, game in enumerate(games):
            try:
                if environment.replayable_rules:
                    environment = self.plugin.make_game(self.config, self._rules_rng)
                    replayed.append(check_rules(environment, game))
                else:
                    check_time_limit(environment.time_limit, game)
            except ValueError as error:
                raise StoreError(f"game {number}: {error}") from None
        lengths, arrays = checked
        try:
            check_rewards(arrays["rewards"],
                          np.concatenate(replayed) if replayed else None,
                          environment.chance_reward_bounds, lengths)
        except ValueError as error:
            raise StoreError(str(error)) from None
        return checked

    def add_games(self, data: bytes, upload_id: str | None = None,
                  client: str = "anonymous") -> dict:
        """Validate, commit, then buffer an upload; return its acknowledgement.

        An `upload_id` seen before is acknowledged again without storing anything: a client
        retrying an upload whose answer it lost does not store its games twice.
        """
        upload_id = upload_id or uuid.uuid4().hex
        checked = self.validate_games(data)
        games, positions = len(checked[0]), int(checked[0].sum())
        now = time.time()
        with self._lock:
            done = self._db.execute("SELECT first_game, num_games, first_position FROM "
                                    "uploads WHERE upload_id = ?", (upload_id,)).fetchone()
            if done is None:
                first_game, first_position = self.replay.total_games, self.replay.total_positions
                self._db.execute(
                    "INSERT INTO uploads (upload_id, client, received, first_game, num_games, "
                    "first_position, num_positions, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (upload_id, client, now, first_game, games, first_position, positions,
                     sqlite3.Binary(data)))
                self.replay.add_checked(*checked)
                self._activity(client, "selfplay", now).record(now, games=games)
                done = (first_game, games, first_position)
            return {"upload_id": upload_id, "first_game": done[0], "games": done[1],
                    "first_position": done[2], "total_games": self.replay.total_games}

    def sample(self, batch_size: int, client: str = "anonymous") -> TrainingBatch:
        if not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise StoreError(f"batch size must be in [1, {MAX_BATCH_SIZE}], got {batch_size}")
        with self._lock:
            if not self.replay.games:
                raise StoreError("the replay buffer is empty: no games uploaded yet")
            batch = self.replay.sample(batch_size)
            self.batches_served += 1
            now = time.time()
            self._activity(client, "train", now).record(now, batches=1)
            return batch

    def update_priorities(self, indices: np.ndarray, errors: np.ndarray) -> int:
        """Apply and record new priorities; ids no longer in the buffer are skipped."""
        with self._lock:
            if len(indices) and (indices.min() < 0 or indices.max() >= self.replay.total_positions):
                raise StoreError(f"priorities: position ids must be in [0, "
                                 f"{self.replay.total_positions})")
            self.replay.update_priorities(indices, errors)
            self._db.executemany("INSERT OR REPLACE INTO priorities VALUES (?, ?)",
                                 zip(indices.tolist(), errors.astype(np.float64).tolist()))
            return len(indices)

    def _activity(self, client: str, kind: str, now: float) -> ClientActivity:
        """The client's entry; a new one first forgets clients silent for the window, and
        the least recently seen beyond `MAX_CLIENTS`, so made-up client ids cannot grow it."""
        activity = self.clients.get(client)
        if activity is None:
            for name in [name for name, old in self.clients.items()
                         if old.last_seen < now - CLIENT_WINDOW_SECONDS]:
                del self.clients[name]
            while len(self.clients) >= MAX_CLIENTS:
                del self.clients[min(self.clients, key=lambda n: self.clients[n].last_seen)]
            activity = self.clients[client] = ClientActivity(kind, now)
        return activity

    # ----- weights (kept by `versions.WeightVersions`) -----

    def latest_weights(self) -> WeightsVersion | None:
        return self.weights.latest()

    def weights_version(self, version: int) -> WeightsVersion:
        return self.weights.get(version)

    def add_weights(self, weights: bytes, optimizer: bytes | None, step: int,
                    client: str = "anonymous") -> WeightsVersion:
        added = self.weights.add(weights, optimizer, step)
        now = time.time()
        with self._lock:
            self._activity(client, "train", now).last_seen = now
        return added

    # ----- training log and statistics -----

    def append_log(self, kind: str, step: int, data: dict) -> None:
        """Record losses or an evaluation (JSON-safe: no NaN or infinity; bounded in size)."""
        if not isinstance(kind, str) or kind not in LOG_KINDS:
            raise StoreError(f"log kind must be one of {', '.join(LOG_KINDS)}, got "
                             f"{str(kind)[:40]!r}")
        if not isinstance(data, dict):
            raise StoreError("log data must be a JSON object")
        if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step <= MAX_ID:
            raise StoreError(f"log step must be an integer in [0, 2^63), got "
                             f"{str(step)[:40]}")
        try:
            text = json.dumps(data, allow_nan=False)
        except ValueError:
            raise StoreError("log data holds non-finite numbers (NaN or infinity)") from None
        if len(text) > MAX_LOG_ENTRY_BYTES:
            raise StoreError(f"log data takes {len(text)} bytes as JSON, at most "
                             f"{MAX_LOG_ENTRY_BYTES}")
        with self._lock:
            self._db.execute("INSERT INTO log (time, step, kind, data) VALUES (?, ?, ?, ?)",
                             (time.time(), step, kind, text))

    def training_log(self, since_id: int = 0, limit: int = 1000) -> tuple[list[dict], bool]:
        """Up to `limit` entries after `since_id`, oldest first, and whether more follow."""
        limit = min(max(limit, 1), MAX_LOG_PAGE)
        with self._lock:
            rows = self._db.execute("SELECT id, time, step, kind, data FROM log WHERE id > ? "
                                    "ORDER BY id LIMIT ?", (min(since_id, MAX_ID), limit + 1)
                                    ).fetchall()
        return ([{"id": row[0], "time": row[1], "step": row[2], "kind": row[3],
                  "data": json.loads(row[4])} for row in rows[:limit]], len(rows) > limit)

    def ingest_series(self, min_bin_seconds: float = 10.0) -> list[dict]:
        """Games received per time bin, oldest first: bins of 10 s, wider on a long run so
        that there are at most `MAX_INGEST_BINS` of them."""
        with self._lock:
            first, last = self._db.execute("SELECT MIN(received), MAX(received) FROM uploads"
                                           ).fetchone()
            span = (last - first) if first is not None else 0.0
            bin_seconds = max(min_bin_seconds, math.ceil(span / MAX_INGEST_BINS / 10.0) * 10.0)
            rows = self._db.execute(
                "SELECT CAST(received / ? AS INTEGER) AS bin, SUM(num_games), "
                "SUM(num_positions) FROM uploads GROUP BY bin ORDER BY bin",
                (bin_seconds,)).fetchall()
        return [{"time": row[0] * bin_seconds, "games": row[1], "positions": row[2]}
                for row in rows]

    def stats(self) -> dict:
        latest = self.latest_weights()
        now = time.time()
        with self._lock:
            clients = [{"id": name, "kind": activity.kind,
                        "seconds_ago": round(now - activity.last_seen, 1),
                        **activity.rates(now)}
                       for name, activity in self.clients.items()
                       if now - activity.last_seen <= CLIENT_WINDOW_SECONDS]
            return {"game": self.config.game, "players": self.replay.num_players,
                    "version": latest.version if latest else 0,
                    "step": latest.step if latest else 0,
                    "games": self.replay.total_games,
                    "positions": self.replay.total_positions,
                    "buffer_games": self.replay.num_games,
                    "buffer_positions": self.replay.num_positions,
                    "batches_served": self.batches_served,
                    "num_games": self.config.num_games, "num_steps": self.config.num_steps,
                    "uptime_seconds": round(now - self.started, 1), "clients": clients}

    def close(self) -> None:
        with self._lock:
            self._db.close()
        self._folder_lock.release()


def _read_config(db: sqlite3.Connection) -> Config | None:
    row = db.execute("SELECT value FROM meta WHERE key = 'config'").fetchone()
    return None if row is None else Config.from_json(row[0])


def stored_config(data_dir: str | os.PathLike) -> Config | None:
    """The config of the run a data folder holds, or None for a new folder."""
    path = Path(data_dir) / DATABASE
    if not path.exists():
        return None
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(SCHEMA)
        return _read_config(db)
    finally:
        db.close()
