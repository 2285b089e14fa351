"""Safe binary formats for arrays over HTTP and at rest: `.npz` bytes read with
`allow_pickle=False`, with every key, dtype and shape checked before anything is used.

A batch of games travels as one archive: the games' rows concatenated (N positions in all)
plus `lengths` [G]. Stored as received, the same bytes are the server's durable record.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence

import numpy as np

from muzero.records import GameRecord
from muzero.replay import TrainingBatch


class WireError(ValueError):
    """Bytes from the network or disk that are not what they claim; the message names why."""


GAME_FIELDS = {"observations": np.float32, "actions": np.int32, "rewards": np.float32,
               "to_play": np.int32, "root_values": np.float32, "policies": np.float32}


def to_npz(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def read_npz(data: bytes, what: str) -> dict[str, np.ndarray]:
    """Every array of an archive, never unpickling: object arrays are refused."""
    if not data.startswith(b"PK"):
        raise WireError(f"{what}: not an .npz archive (it must be a zip file of .npy arrays)")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as error:
        raise WireError(f"{what}: not a readable .npz archive ({error})") from None


def from_npz(data: bytes, what: str, expected: dict[str, type]) -> dict[str, np.ndarray]:
    """The arrays of an archive holding exactly the `expected` names with those dtypes."""
    arrays = read_npz(data, what)
    if set(arrays) != set(expected):
        missing = sorted(set(expected) - set(arrays))
        extra = sorted(set(arrays) - set(expected))
        raise WireError(f"{what}: expected arrays {sorted(expected)}"
                        + (f", missing {missing}" if missing else "")
                        + (f", unexpected {extra}" if extra else ""))
    for name, dtype in expected.items():
        if arrays[name].dtype != dtype:
            raise WireError(f"{what}: {name} has dtype {arrays[name].dtype}, expected "
                            f"{np.dtype(dtype).name}")
    return arrays


def encode_games(games: Sequence[GameRecord]) -> bytes:
    arrays = {name: np.concatenate([getattr(game, name) for game in games]).astype(dtype)
              for name, dtype in GAME_FIELDS.items()}
    arrays["lengths"] = np.array([len(game) for game in games], np.int32)
    return to_npz(arrays)


def decode_games(data: bytes) -> list[GameRecord]:
    """The games of an upload, split by `lengths`. Only the archive's structure is checked
    here; what the games hold is the replay buffer's `check`, and the rules `check_rules`."""
    arrays = from_npz(data, "games", {**GAME_FIELDS, "lengths": np.int32})
    lengths = arrays["lengths"]
    if lengths.ndim != 1 or len(lengths) == 0:
        raise WireError("games: lengths must be a non-empty 1-d array")
    if (lengths < 1).any():
        raise WireError("games: every game must have at least one move")
    total = int(lengths.sum())
    for name in GAME_FIELDS:
        if arrays[name].ndim == 0 or len(arrays[name]) != total:
            raise WireError(f"games: {name} has shape {arrays[name].shape}, but the lengths "
                            f"sum to {total} rows")
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    return [GameRecord(**{name: arrays[name][start:end] for name in GAME_FIELDS})
            for start, end in zip(bounds[:-1], bounds[1:])]


BATCH_DTYPES = {name: (np.int64 if name == "indices" else
                       np.int32 if name in ("actions", "target_to_play") else np.float32)
                for name in TrainingBatch._fields}


def encode_batch(batch: TrainingBatch) -> bytes:
    return to_npz(batch._asdict())


def decode_batch(data: bytes) -> TrainingBatch:
    return TrainingBatch(**from_npz(data, "batch", BATCH_DTYPES))


PRIORITY_FIELDS = {"indices": np.int64, "errors": np.float32}


def encode_priorities(indices: np.ndarray, errors: np.ndarray) -> bytes:
    return to_npz({"indices": np.asarray(indices, np.int64),
                   "errors": np.asarray(errors, np.float32)})


def decode_priorities(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    arrays = from_npz(data, "priorities", PRIORITY_FIELDS)
    indices, errors = arrays["indices"], arrays["errors"]
    if indices.ndim != 1 or indices.shape != errors.shape:
        raise WireError(f"priorities: indices {indices.shape} and errors {errors.shape} must "
                        f"be equal 1-d shapes")
    if not np.isfinite(errors).all() or (errors < 0).any():
        raise WireError("priorities: errors must be finite and non-negative")
    return indices, errors
