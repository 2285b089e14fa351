"""The run's games: acknowledged uploads in SQLite, and the replay buffer sampled from them.

An upload of games is validated in full (wire format, shapes and numbers, the game's rules where
they can be replayed), committed to SQLite as the bytes received, and only then added to the
buffer and acknowledged, so a server killed at any moment keeps every game it acknowledged that
its window holds. At start-up the buffer is rebuilt from the newest uploads that fill its window,
numbered as before, and the priorities the learner reported are applied again: the same buffer,
the same priorities. Sampling never touches SQLite. By default (`--keep-games window`) an
upload's games go once every position of it has left the window, which nothing reads again;
`all` keeps the run's record.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Callable

import numpy as np

from muzero.config import Config
from muzero.game import Game
from muzero.plugins import GamePlugin
from muzero.records import check_rewards, check_rules, check_time_limit
from muzero.replay import ReplayBuffer, StoredPositions, TrainingBatch
from muzero.server import wire
from muzero.server.errors import StoreError
from muzero.server.ingest import IngestSeries
from muzero.symmetry import symmetries_from_plugin
from muzero.targets import CheckedGames

MAX_UPLOAD_BYTES = 48 * 1024 * 1024  # an upload's arrays, uncompressed, whatever the window
MAX_BATCH_SIZE = 65536
MAX_REANALYSE_POSITIONS = 4096  # stored positions one request for reanalysis may take


class GameArchive:
    """Uploads in the `uploads` and `priorities` tables, and the replay buffer over them."""

    def __init__(self, db: sqlite3.Connection, lock: threading.Lock, plugin: GamePlugin,
                 config: Config, warn: Callable[[str], None], keep_games: str):
        self.keep_games = keep_games  # one of folder.KEEP_GAMES
        self._db = db
        self._lock = lock
        self.plugin = plugin
        self.config = config
        self._warn = warn
        sample_game = plugin.make_game(config, np.random.default_rng(0))
        self.replay = ReplayBuffer(config, tuple(sample_game.observation_shape),
                                   sample_game.num_actions, sample_game.num_players,
                                   np.random.default_rng([config.seed, 2]),
                                   symmetries_from_plugin(plugin, config))
        self.upload_limits = self._upload_limits(sample_game)
        self.target_limits = wire.ArchiveLimits(  # reanalysed ids, policies, root values
            MAX_REANALYSE_POSITIONS * 4 * (2 + sample_game.num_actions + sample_game.num_players)
            + 3 * wire.NPY_HEADER_SLACK, max_members=3)
        self._rules_rng = np.random.default_rng(0)  # chance in replayed games is not compared
        self.batches_served = 0
        self._rebuild_replay()
        self.ingest = IngestSeries(db.execute("SELECT received, num_games, num_positions FROM "
                                              "uploads ORDER BY id").fetchall())
        self._games_kept_from = 0  # uploads before this id hold no games (keep_games window)
        emptied = self._drop_games_behind_window()
        if emptied:  # a folder of a server that kept every game (--keep-games all)
            self._warn(f"emptied the games of {emptied} uploads that have left the replay window "
                       f"(--keep-games window, the default; --keep-games all keeps every game)")

    def _upload_limits(self, game: Game) -> wire.ArchiveLimits:
        """An upload may carry at most a replay window of positions (longer games are refused
        anyway), at the bytes per position of this game's arrays."""
        values = (int(np.prod(game.observation_shape)) + 1 + game.num_players + 1
                  + game.num_players + 2 * game.num_actions + 2)  # `lengths`, `truncated`
        arrays = len(wire.GAME_FIELDS) + 2
        needed = self.replay.capacity * values * 4 + wire.NPY_HEADER_SLACK * arrays
        return wire.ArchiveLimits(min(needed, MAX_UPLOAD_BYTES), max_members=arrays)

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
                checked = self.validate(data)
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

    def validate(self, data: bytes) -> CheckedGames:
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
        try:
            check_rewards(checked.arrays["rewards"],
                          np.concatenate(replayed) if replayed else None,
                          environment.chance_reward_bounds, checked.lengths)
        except ValueError as error:
            raise StoreError(str(error)) from None
        return checked

    def add(self, data: bytes, upload_id: str | None, client: str) -> tuple[dict, bool]:
        """Validate, commit, then buffer an upload; return its acknowledgement and whether it
        was new.

        An `upload_id` seen before is acknowledged again without storing anything: a client
        retrying an upload whose answer it lost does not store its games twice.
        """
        upload_id = upload_id or uuid.uuid4().hex
        checked = self.validate(data)
        games, positions = len(checked.lengths), int(checked.lengths.sum())
        with self._lock:
            done = self._db.execute("SELECT first_game, num_games, first_position FROM "
                                    "uploads WHERE upload_id = ?", (upload_id,)).fetchone()
            new = done is None
            if new:
                first_game, first_position = self.replay.total_games, self.replay.total_positions
                received = time.time()
                self._db.execute(
                    "INSERT INTO uploads (upload_id, client, received, first_game, num_games, "
                    "first_position, num_positions, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (upload_id, client, received, first_game, games, first_position,
                     positions, sqlite3.Binary(data)))
                self.replay.add_checked(*checked)
                self.ingest.add(received, games, positions)
                self._drop_games_behind_window()
                done = (first_game, games, first_position)
            return {"upload_id": upload_id, "first_game": done[0], "games": done[1],
                    "first_position": done[2], "total_games": self.replay.total_games}, new

    def _drop_games_behind_window(self) -> int:
        """With keep_games window, empty the games of uploads every position of which has left
        the replay window: a restart rebuilds the window from newer uploads, so they are never
        read again, and SQLite reuses their pages for new games. The rows stay (the chart of
        games received, a client retrying an upload id). Returns how many were emptied."""
        if self.keep_games != "window" or not self.replay.games:
            return 0
        first = self.replay.games[0][0]  # the window's oldest position
        emptied = self._db.execute("UPDATE uploads SET data = X'' WHERE id >= ? AND "
                                   "length(data) > 0 AND first_position + num_positions <= ?",
                                   (self._games_kept_from, first))
        kept = self._db.execute("SELECT MIN(id) FROM uploads WHERE id >= ? AND "
                                "first_position + num_positions > ?",
                                (self._games_kept_from, first)).fetchone()[0]
        self._games_kept_from = kept if kept is not None else self._games_kept_from
        return emptied.rowcount

    def sample(self, batch_size: int) -> TrainingBatch:
        if not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise StoreError(f"batch size must be in [1, {MAX_BATCH_SIZE}], got {batch_size}")
        with self._lock:
            if not self.replay.games:
                raise StoreError("the replay buffer is empty: no games uploaded yet")
            batch = self.replay.sample(batch_size)
            self.batches_served += 1
            return batch

    def positions_to_reanalyse(self, count: int) -> StoredPositions:
        """Whole games of about `count` positions, those with the oldest targets first
        (`ReplayBuffer.positions_to_reanalyse`)."""
        if not 1 <= count <= MAX_REANALYSE_POSITIONS:
            raise StoreError(f"positions must be in [1, {MAX_REANALYSE_POSITIONS}], got {count}")
        with self._lock:
            if not self.replay.games:
                raise StoreError("the replay buffer is empty: no games uploaded yet")
            return self.replay.positions_to_reanalyse(count)

    def refresh_targets(self, position_ids: np.ndarray, policies: np.ndarray,
                        root_values: np.ndarray) -> int:
        """A reanalysis's new targets, in the buffer only: they are derived from the stored
        games, which stay as uploaded, so a restart returns to self-play's targets until the
        games are reanalysed again."""
        with self._lock:
            if len(position_ids) and (position_ids.min() < 0
                                      or position_ids.max() >= self.replay.total_positions):
                raise StoreError(f"reanalysed targets: position ids must be in [0, "
                                 f"{self.replay.total_positions})")
            try:
                return self.replay.refresh_targets(position_ids, policies, root_values)
            except ValueError as error:  # targets no search gives: the client's mistake
                raise StoreError(str(error)) from None

    def update_priorities(self, indices: np.ndarray, errors: np.ndarray) -> int:
        """Apply and record new priorities; ids no longer in the buffer are skipped. The rows
        of positions the window has left are deleted: a restart applies only the window's, and
        a week-long run would otherwise keep a row for every position it ever played."""
        with self._lock:
            if len(indices) and (indices.min() < 0 or indices.max() >= self.replay.total_positions):
                raise StoreError(f"priorities: position ids must be in [0, "
                                 f"{self.replay.total_positions})")
            self.replay.update_priorities(indices, errors)
            first = self.replay.games[0][0] if self.replay.games else 0
            in_window = indices >= first
            with self._db:  # one transaction: committed, or rolled back on an error
                self._db.execute("BEGIN")
                self._db.executemany("INSERT OR REPLACE INTO priorities VALUES (?, ?)",
                                     zip(indices[in_window].tolist(),
                                         errors[in_window].astype(np.float64).tolist()))
                self._db.execute("DELETE FROM priorities WHERE position_id < ?", (first,))
            return len(indices)
