"""Checkpoints of a run: everything needed to continue it exactly, in safe formats only.

A run folder (`checkpoints/<game>/<run>/`) holds TensorBoard events, `evaluations.jsonl` (one
line per checkpoint) and checkpoint folders `step-000500/`, each with
- `network.weights.h5`  Keras HDF5 weights tagged with the network's spec;
- `agent.weights.h5`    the weights the agent plays with, where they differ from the trained
                        ones (`agent_averaging`: their moving average);
- `optimizer.npz`       the optimizer's variables (moments, iteration counter);
- `replay.npz`          the replay buffer's arrays (games, targets, priorities);
- `checkpoint.json`     config, step, games played, evaluation, generator states.
A checkpoint is written into a temporary folder, flushed to disk and renamed into place; then the
`latest` file (replaced atomically) names it. A run killed while saving leaves the previous
checkpoint and `latest` intact. Older checkpoints beyond the last `keep` are removed, except the
run's agent: the `agent` file names the checkpoint that plays for the run (muzero/selection.py:
the best evaluated one), which `evaluate`, `play` and `load_agent` use, where `--resume` uses
`latest`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from muzero.config import Config, ConfigError

FORMAT = 1
LATEST = "latest"
AGENT = "agent"
SIDECAR = "checkpoint.json"
WEIGHTS = "network.weights.h5"
AGENT_WEIGHTS = "agent.weights.h5"
OPTIMIZER = "optimizer.npz"
REPLAY = "replay.npz"


class CheckpointError(ValueError):
    """A checkpoint that is missing, corrupt or does not fit; the message names the problem."""


@dataclass
class Checkpoint:
    """A checkpoint on disk, its sidecar read and checked."""

    path: Path
    meta: dict
    config: Config

    @property
    def step(self) -> int:
        return int(self.meta["step"])

    @property
    def weights_path(self) -> Path:
        """The trained weights, which a resumed run continues from."""
        return self.path / WEIGHTS

    @property
    def agent_weights_path(self) -> Path:
        """The weights the agent plays with: the trained ones unless the run averaged them."""
        averaged = self.path / AGENT_WEIGHTS
        return averaged if averaged.exists() else self.weights_path

    def optimizer_state(self) -> list[np.ndarray]:
        arrays = _load_npz(self.path / OPTIMIZER)
        try:
            return optimizer_variables(arrays)
        except ValueError as error:
            raise CheckpointError(f"{self.path / OPTIMIZER}: {error}") from None

    def replay_arrays(self) -> dict[str, np.ndarray]:
        return _load_npz(self.path / REPLAY)


def optimizer_archive(state: list[np.ndarray]) -> dict[str, np.ndarray]:
    """The optimizer's variables as named arrays for an .npz: v0000, v0001, ... in order."""
    return {f"v{index:04d}": array for index, array in enumerate(state)}


def optimizer_variables(arrays: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The variables of an `optimizer_archive`, in order; `ValueError` if misnamed."""
    try:
        return [arrays[f"v{index:04d}"] for index in range(len(arrays))]
    except KeyError:
        raise ValueError(f"variables are not numbered v0000..v{len(arrays) - 1:04d}") \
            from None


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as file:
        os.fsync(file.fileno())


def _write_json_atomically(path: Path, data: dict | str) -> None:
    text = data if isinstance(data, str) else json.dumps(data, indent=2, sort_keys=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    """Arrays of an .npz file, never unpickling anything."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except FileNotFoundError:
        raise CheckpointError(f"{path}: missing from the checkpoint") from None
    except (ValueError, OSError, EOFError) as error:
        raise CheckpointError(f"{path}: corrupt or not an .npz file ({error})") from None
    except Exception as error:  # zipfile.BadZipFile and friends
        raise CheckpointError(f"{path}: corrupt ({type(error).__name__}: {error})") from None


def checkpoint_name(step: int) -> str:
    return f"step-{step:06d}"


def save_checkpoint(run_dir: Path, step: int, meta: dict, save_weights,
                    optimizer_state: list[np.ndarray], replay_arrays: dict[str, np.ndarray],
                    keep: int = 2, agent_step: int | None = None,
                    save_agent_weights=None) -> Path:
    """Write checkpoint `step-<step>` in `run_dir` atomically; return its folder.

    `save_weights(path)` writes the network's weights file, `save_agent_weights(path)` (if
    given) the agent's where they differ; `meta` must hold the config as
    JSON text under "config" and be JSON-serialisable. The `agent` file names the checkpoint of
    `agent_step` (None: this one), which is kept past `keep`.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    name = checkpoint_name(step)
    final = run_dir / name
    staging = Path(tempfile.mkdtemp(dir=run_dir, prefix=f".{name}."))
    replaced = staging.with_name(staging.name + ".old")
    try:
        save_weights(staging / WEIGHTS)
        if save_agent_weights is not None:
            save_agent_weights(staging / AGENT_WEIGHTS)
        np.savez(staging / OPTIMIZER, **optimizer_archive(optimizer_state))
        np.savez(staging / REPLAY, **replay_arrays)
        (staging / SIDECAR).write_text(json.dumps({**meta, "format": FORMAT, "step": step},
                                                  indent=2, sort_keys=True))
        for file in staging.iterdir():
            _fsync_file(file)
        if final.exists():  # a checkpoint of the same step, e.g. written again after Ctrl-C:
            os.replace(final, replaced)  # moved aside, so `latest` misses it for two renames only
        os.replace(staging, final)
    finally:
        if replaced.exists() and not final.exists():  # the new one failed: the old one stays
            os.replace(replaced, final)
        for leftover in (staging, replaced):
            if leftover.exists():
                shutil.rmtree(leftover)
    _write_json_atomically(run_dir / LATEST, name + "\n")
    agent = name if agent_step is None else checkpoint_name(agent_step)
    _write_json_atomically(run_dir / AGENT, agent + "\n")
    checkpoints = sorted(path for path in run_dir.glob("step-*") if path.is_dir())
    for old in checkpoints[:-keep]:
        if old.name != agent:
            shutil.rmtree(old, ignore_errors=True)
    return final


def checkpoints_before(path: str | os.PathLike) -> list[Path]:
    """The checkpoints of a run older than the one `path` names (a checkpoint folder, or a run
    folder through `latest`; all of the run's if `latest` is missing), oldest first: where a
    resume can fall back to when that one is damaged."""
    path = Path(path)
    if (path / SIDECAR).exists():
        run_dir, newest = path.parent, path.name
    else:
        named = path / LATEST
        run_dir, newest = path, named.read_text().strip() if named.is_file() else None
    return [folder for folder in sorted(run_dir.glob("step-*"))
            if (folder / SIDECAR).is_file() and (newest is None or folder.name < newest)]


def resolve(path: str | os.PathLike, pointer: str = LATEST) -> Path:
    """A checkpoint folder from itself or from its run folder, through `pointer` (`latest`, or
    `agent`, which runs written before it existed lack: then `latest`)."""
    path = Path(path)
    if (path / SIDECAR).is_file():
        return path
    named = path / pointer
    if pointer != LATEST and not named.is_file():
        named = path / LATEST
    if named.is_file():
        target = path / named.read_text().strip()
        if not (target / SIDECAR).is_file():
            raise CheckpointError(f"{named} names {target.name!r}, which holds no {SIDECAR}")
        return target
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint or run folder")
    raise CheckpointError(f"{path}: neither a checkpoint (no {SIDECAR}) nor a run folder "
                          f"(no {LATEST} file)")


def load_checkpoint(path: str | os.PathLike, pointer: str = LATEST) -> Checkpoint:
    """Read and check a checkpoint's sidecar (from the checkpoint, or from its run folder
    through `pointer`)."""
    folder = resolve(path, pointer)
    sidecar = folder / SIDECAR
    try:
        meta = json.loads(sidecar.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{sidecar}: corrupt, not valid JSON ({error})") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{sidecar}: corrupt, expected a JSON object")
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{sidecar}: format {meta.get('format')!r}, this version reads "
                              f"format {FORMAT}")
    for key in ("config", "step", "game"):
        if key not in meta:
            raise CheckpointError(f"{sidecar}: corrupt, no {key!r} entry")
    try:
        config = Config.from_json(meta["config"])
    except ConfigError as error:
        raise CheckpointError(f"{sidecar}: bad config ({error})") from None
    for name in (WEIGHTS, OPTIMIZER, REPLAY):
        if not (folder / name).is_file():
            raise CheckpointError(f"{folder}: {name} is missing")
    return Checkpoint(folder, meta, config)


def append_jsonl(path: Path, record: dict) -> None:
    """One JSON line appended (and flushed) to a log such as evaluations.jsonl."""
    with open(path, "a") as file:
        file.write(json.dumps(record, sort_keys=True) + "\n")
        file.flush()
        os.fsync(file.fileno())
