"""The run's weights: one HDF5 file per version (plus the learner's optimizer state when it sends
one) in `weights/`, and a row per version in the store's SQLite database.

A new version is written to a temporary file, checked against the game's network (shapes,
finite values; the optimizer state against the optimizer of that network), fsynced and renamed
before its row is committed; a refused or failed upload leaves no file behind. Version numbers
only grow, even past a version dropped at start-up because its file was lost or damaged.

Old versions are pruned: a trainer publishes one every `--publish-interval` steps (tic-tac-toe:
1.55 MB of weights and optimizer state a version, 0.6 MB a second, 370 GB a week), while clients
only ever ask for the newest weights and the run's agent. The newest `keep_latest`
versions stay (`--keep-versions`), and every version at a step the store keeps (the agent's, and
checkpoints whose evaluation has not come yet: `Store._prune_weights`).
"""

from __future__ import annotations

import math
import os
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from muzero.checkpoint import optimizer_variables
from muzero.network import MuZeroNetwork, WeightsMismatchError
from muzero.server import wire
from muzero.server.errors import MAX_ID, NotFound, StoreError
from muzero.server.folder import TEMPORARY_PREFIX
from muzero.training import check_optimizer_state, load_average

DAMAGED_DIR = "damaged"  # weights files that failed the start-up check, kept for a post-mortem


@dataclass(frozen=True)
class WeightsVersion:
    version: int
    step: int
    path: Path
    optimizer_path: Path | None


class WeightVersions:
    """The versions in `folder`, their rows in `db` (guarded by the store's `lock`)."""

    def __init__(self, db: sqlite3.Connection, lock: threading.Lock, folder: Path,
                 network: MuZeroNetwork, optimizer: keras.optimizers.Optimizer,
                 warn: Callable[[str], None]):
        self._db = db
        self._lock = lock
        self.folder = folder
        self.network = network  # uploads are loaded into it to be checked
        self._optimizer = optimizer  # built for `network`: optimizer uploads are checked on it
        optimizer_variables = self._optimizer_variables = list(optimizer.variables)
        self._warn = warn
        self.optimizer_limits = wire.ArchiveLimits(
            sum(math.prod(v.shape) * 8 for v in optimizer_variables)
            + wire.NPY_HEADER_SLACK * len(optimizer_variables),
            max_members=len(optimizer_variables))

    def latest(self) -> WeightsVersion | None:
        with self._lock:
            row = self._db.execute("SELECT version, step, weights, optimizer FROM versions "
                                   "ORDER BY version DESC LIMIT 1").fetchone()
        return self._version(row)

    def steps(self) -> set[int]:
        """The training steps that have weights."""
        with self._lock:
            return {row[0] for row in self._db.execute("SELECT DISTINCT step FROM versions")}

    def at_step(self, step: int) -> WeightsVersion | None:
        """The newest version trained for `step` steps, if any."""
        with self._lock:
            row = self._db.execute("SELECT version, step, weights, optimizer FROM versions "
                                   "WHERE step = ? ORDER BY version DESC LIMIT 1",
                                   (step,)).fetchone()
        return self._version(row)

    def get(self, version: int) -> WeightsVersion:
        if not 0 <= version <= MAX_ID:
            raise NotFound(f"no weights version {version}")
        with self._lock:
            row = self._db.execute("SELECT version, step, weights, optimizer FROM versions "
                                   "WHERE version = ?", (version,)).fetchone()
            newest = None if row else self._db.execute("SELECT MAX(version) FROM versions"
                                                        ).fetchone()[0]
        if row is None:
            raise NotFound(self.not_kept(version) if version < (newest or 0)
                           else f"no weights version {version}")
        return self._version(row)

    @staticmethod
    def not_kept(version: int) -> str:
        return (f"weights version {version} is not kept (the server keeps its newest versions, "
                f"the run's agent and the checkpoints awaiting evaluation)")

    def prune(self, keep_latest: int, keeps_step: Callable[[int], bool]) -> int:
        """Delete the versions older than the newest `keep_latest` whose step `keeps_step`
        does not keep; returns how many. Files go before rows: a server killed in between
        finds rows without files at its next start, and drops them with a warning."""
        with self._lock:
            rows = self._db.execute("SELECT version, step, weights, optimizer FROM versions "
                                    "ORDER BY version DESC LIMIT -1 OFFSET ?",
                                    (keep_latest,)).fetchall()
            doomed = [row for row in rows if not keeps_step(row[1])]
            for version, _, weights, optimizer in doomed:
                stored = [self.folder / name for name in (weights, optimizer) if name]
                for path in [*stored, self._agent_path(version)]:
                    path.unlink(missing_ok=True)
            with self._db:  # one transaction: committed, or rolled back on an error
                self._db.execute("BEGIN")
                for version, *_ in doomed:
                    self._forget(version)
        return len(doomed)

    def _agent_path(self, version: int) -> Path:
        """Where `as_agent` writes the version's averaged weights."""
        return self.folder / f"v{version:06d}.agent.weights.h5"

    def _version(self, row) -> WeightsVersion | None:
        if row is None:
            return None
        return WeightsVersion(row[0], row[1], self.folder / row[2],
                              self.folder / row[3] if row[3] else None)

    def save_initial(self) -> None:
        """Version 1: the network's initial weights, so self-play can start before training."""
        with tempfile.TemporaryDirectory(dir=self.folder.parent,
                                         prefix=TEMPORARY_PREFIX) as folder:
            path = Path(folder) / "initial.weights.h5"
            self.network.save_weights_file(path)
            self.add(path.read_bytes(), None, step=0)

    def as_agent(self, version: WeightsVersion | None) -> WeightsVersion | None:
        """`version` as the agent plays it: with agent averaging (the optimizer keeps a moving
        average of the trainable weights, muzero/training.py), the version's weights with that
        average from its optimizer state in place of the trained ones, written once beside it
        as `vNNNNNN.agent.weights.h5`; otherwise `version` itself."""
        if version is None or not self._optimizer.use_ema or version.optimizer_path is None:
            return version
        path = self._agent_path(version.version)
        with self._lock:  # the check network and optimizer are shared with uploads
            if not path.exists():
                try:
                    arrays = optimizer_variables(wire.read_npz(
                        version.optimizer_path.read_bytes(), "optimizer", self.optimizer_limits))
                    self.network.load_weights_file(version.path)
                except (ValueError, OSError) as error:  # damaged on disk since its upload
                    self._warn(f"weights version {version.version}: no average for the agent "
                               f"({error}); serving its trained weights")
                    return version
                for variable, array in zip(self._optimizer_variables, arrays):
                    variable.assign(array)
                load_average(self.network, self._optimizer)
                self.network.save_weights_file(path)
        return WeightsVersion(version.version, version.step, path, version.optimizer_path)

    def check_on_disk(self) -> None:
        """Start-up integrity check: every version's files present, the newest loadable and
        finite. A version whose file is lost is dropped with a warning (its number is not
        reused); a damaged newest file is moved to `weights/damaged/` and the next newest
        intact version serves. Older versions are checked for presence only: loading each of
        a long run's thousands of versions would make every start slow."""
        folder = self.folder
        rows = self._db.execute("SELECT version, weights, optimizer FROM versions "
                                "ORDER BY version DESC").fetchall()
        newest_intact = None
        for version, weights, optimizer in rows:
            problem = None
            if not (folder / weights).is_file():
                problem = f"its file weights/{weights} is missing"
            elif newest_intact is None:
                problem = self._weights_problem(folder / weights)
                if problem is not None:
                    (folder / DAMAGED_DIR).mkdir(exist_ok=True)
                    os.replace(folder / weights, folder / DAMAGED_DIR / weights)
                    problem += f"; the file is now weights/{DAMAGED_DIR}/{weights}"
            if problem is not None:
                self._forget(version)
                self._warn(f"weights version {version} dropped: {problem}")
                continue
            newest_intact = newest_intact or version
            if optimizer is not None and not (folder / optimizer).is_file():
                self._db.execute("UPDATE versions SET optimizer = NULL WHERE version = ?",
                                 (version,))
                self._warn(f"weights version {version}: its optimizer state weights/"
                           f"{optimizer} is missing; a trainer resuming from it starts a "
                           f"fresh optimizer")
        if rows and newest_intact != rows[0][0]:
            self._warn(f"serving weights version {newest_intact} (the newest intact one)"
                       if newest_intact else "no intact weights left: starting from new ones")

    def _weights_problem(self, path: Path) -> str | None:
        """Why the weights file at `path` cannot serve this run, or None."""
        try:
            self.network.load_weights_file(path)
        except (WeightsMismatchError, ValueError, OSError) as error:
            return str(error).replace(str(path), path.name)
        if not all(np.isfinite(array).all() for array in self.network.get_weights()):
            return "it holds non-finite numbers (NaN or infinity)"
        return None

    def _forget(self, version: int) -> None:
        """Drop a version's row, remembering its number so that it is never given again."""
        self._db.execute("INSERT INTO meta VALUES ('last_version', ?) ON CONFLICT(key) DO "
                         "UPDATE SET value = MAX(CAST(value AS INTEGER), "
                         "CAST(excluded.value AS INTEGER))", (version,))
        self._db.execute("DELETE FROM versions WHERE version = ?", (version,))

    def _next_version(self) -> int:
        latest = self._db.execute("SELECT MAX(version) FROM versions").fetchone()[0] or 0
        forgotten = self._db.execute("SELECT value FROM meta WHERE key = 'last_version'"
                                     ).fetchone()
        return max(latest, int(forgotten[0]) if forgotten else 0) + 1

    def add(self, weights: bytes, optimizer: bytes | None, step: int) -> WeightsVersion:
        """Check the weights fit the game's network (and the optimizer state its optimizer),
        write them atomically, then commit. Nothing is left on disk by a refused upload."""
        if not 0 <= step <= MAX_ID:
            raise StoreError(f"step must be in [0, 2^63), got {step}")
        if optimizer is not None:
            self._check_optimizer_state(optimizer)
        folder = self.folder
        staged, committed = [], []
        try:
            for suffix, data in ((".weights.h5", weights), (".optimizer.npz", optimizer)):
                if data is None:
                    continue
                handle, name = tempfile.mkstemp(suffix=suffix, dir=folder,
                                                prefix=TEMPORARY_PREFIX)
                with os.fdopen(handle, "wb") as file:
                    file.write(data)
                    file.flush()
                    os.fsync(file.fileno())
                staged.append(Path(name))
            with self._lock:
                problem = self._weights_problem(staged[0])
                if problem is not None:
                    raise StoreError(f"weights: {problem}".replace(staged[0].name, "upload"))
                version = self._next_version()
                names = [f"v{version:06d}.weights.h5",
                         f"v{version:06d}.optimizer.npz" if optimizer is not None else None]
                for path, name in zip(staged, names):
                    os.replace(path, folder / name)
                    committed.append(folder / name)
                _fsync_directory(folder)
                self._db.execute("INSERT INTO versions VALUES (?, ?, ?, ?, ?)",
                                 (version, step, time.time(), names[0], names[1]))
                committed.clear()  # the row names them now
        finally:
            for path in staged + committed:  # refused, or the row was never written
                path.unlink(missing_ok=True)
        return self._version((version, step, names[0], names[1]))

    def _check_optimizer_state(self, data: bytes) -> None:
        """An optimizer state must fit this run's optimizer of this network, with finite
        numbers: a trainer resuming from it would otherwise fail or train on garbage."""
        try:
            arrays = optimizer_variables(wire.read_npz(data, "optimizer", self.optimizer_limits))
            check_optimizer_state(self._optimizer_variables, arrays)
        except ValueError as error:  # WireError included
            raise StoreError(f"optimizer: {error}".replace("optimizer: optimizer", "optimizer")) \
                from None
        for index, array in enumerate(arrays):
            if array.dtype.kind not in "fiu" or not np.isfinite(array).all():
                raise StoreError(f"optimizer: variable {index} holds non-finite or non-numeric "
                                 f"values")


def _fsync_directory(folder: Path) -> None:
    handle = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)
