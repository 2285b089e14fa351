"""Safe binary formats for arrays over HTTP and at rest: `.npz` bytes read with
`allow_pickle=False`, with every key, dtype and shape checked before anything is used.

A batch of games travels as one archive: the games' rows concatenated (N positions in all)
plus `lengths` [G]. Stored as received, the same bytes are the server's durable record.
"""

from __future__ import annotations

import io
import math
import struct
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.lib import format as npy_format

from muzero.records import GameRecord, legal_from_search
from muzero.replay import StoredPositions, TrainingBatch


class WireError(ValueError):
    """Bytes from the network or disk that are not what they claim; the message names why."""


GAME_FIELDS = {"observations": np.float32, "actions": np.int32, "rewards": np.float32,
               "to_play": np.int32, "root_values": np.float32, "policies": np.float32,
               "legal": np.bool_}
#: arrays an upload stored before them lacks: no game was cut by a time limit, and the legal
#: moves are taken from the search (`records.legal_from_search`)
ADDED_LATER = {"truncated": np.bool_, "legal": np.bool_}


def to_npz(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


@dataclass(frozen=True)
class ArchiveLimits:
    """What one archive may hold: read from its zip directory and `.npy` headers before any
    array is inflated, so a small body that claims (or inflates to) gigabytes costs nothing."""

    max_bytes: int  # all arrays together, uncompressed
    max_members: int = 16


DEFAULT_LIMITS = ArchiveLimits(max_bytes=64 * 1024 * 1024)
MAX_DIRECTORY_BYTES = 64 * 1024  # the zip's central directory
MAX_NPY_HEADER = 4096
NPY_HEADER_SLACK = 4096  # what a route's byte budget allows per array for its .npy header
ALLOWED_KINDS = "fiub"  # numbers and booleans: no objects, strings, records or voids


def read_npz(data: bytes, what: str,
             limits: ArchiveLimits = DEFAULT_LIMITS) -> dict[str, np.ndarray]:
    """Every array of an archive, never unpickling, within `limits`; `WireError` names why not."""
    if not data.startswith(b"PK"):
        raise WireError(f"{what}: not an .npz archive (it must be a zip file of .npy arrays)")
    _check_directory(data, what, limits)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
            if len(members) > limits.max_members:
                raise WireError(f"{what}: {len(members)} arrays, at most {limits.max_members}")
            declared = sum(member.file_size for member in members)
            if declared > limits.max_bytes:
                raise WireError(f"{what}: the arrays take {declared} bytes uncompressed, more "
                                f"than the {limits.max_bytes} this request may use")
            arrays = {}
            for member in members:
                name = member.filename.removesuffix(".npy")
                if not member.filename.endswith(".npy") or name in arrays:
                    raise WireError(f"{what}: member {member.filename!r} is not a distinct "
                                    f".npy array")
                if member.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) or \
                        member.flag_bits & 0x1:
                    raise WireError(f"{what}: member {member.filename!r} is encrypted or "
                                    f"compressed with a method other than deflate")
                with archive.open(member) as stream:
                    arrays[name] = _read_npy(stream, member, what)
            return arrays
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError, zlib.error) as error:
        if isinstance(error, WireError):
            raise
        raise WireError(f"{what}: not a readable .npz archive ({error})") from None


def _check_directory(data: bytes, what: str, limits: ArchiveLimits) -> None:
    """Refuse archives whose directory alone would cost time or memory to parse (thousands of
    entries), from the end-of-directory record, before `zipfile` walks the directory."""
    end = data.rfind(b"PK\x05\x06", max(0, len(data) - 22 - 65535))
    if end < 0 or len(data) < end + 22:
        raise WireError(f"{what}: not a readable .npz archive (no zip directory)")
    entries, directory_size = struct.unpack("<HI", data[end + 10:end + 16])
    if entries > limits.max_members or directory_size > MAX_DIRECTORY_BYTES:
        raise WireError(f"{what}: the zip directory lists {entries} entries in "
                        f"{directory_size} bytes; at most {limits.max_members} arrays are "
                        f"accepted")


def _read_npy(stream, member: zipfile.ZipInfo, what: str) -> np.ndarray:
    """One array from its member's stream: the header is checked against the member's declared
    size before the data are inflated, into a buffer of exactly that size."""
    name = member.filename
    try:
        version = npy_format.read_magic(stream)
    except ValueError:
        raise WireError(f"{what}: member {name!r} is not a .npy array (no .npy magic)") from None
    if version == (1, 0):
        shape, fortran, dtype = npy_format.read_array_header_1_0(stream, MAX_NPY_HEADER)
    elif version == (2, 0):
        shape, fortran, dtype = npy_format.read_array_header_2_0(stream, MAX_NPY_HEADER)
    else:
        raise WireError(f"{what}: member {name!r} has .npy format {version}, expected 1.0/2.0")
    if dtype.kind not in ALLOWED_KINDS or dtype.fields is not None or dtype.itemsize == 0:
        raise WireError(f"{what}: member {name!r} has dtype {dtype}, expected numbers")
    size = math.prod(shape) * dtype.itemsize
    if stream.tell() + size != member.file_size:
        raise WireError(f"{what}: member {name!r} declares shape {shape} of {dtype} "
                        f"({size} bytes), but holds {member.file_size - stream.tell()}")
    buffer = bytearray(size)
    if stream.readinto(buffer) != size:
        raise WireError(f"{what}: member {name!r} is truncated")
    return np.frombuffer(buffer, dtype).reshape(shape, order="F" if fortran else "C")


def from_npz(data: bytes, what: str, expected: dict[str, type],
             limits: ArchiveLimits = DEFAULT_LIMITS,
             optional: dict[str, type] | None = None) -> dict[str, np.ndarray]:
    """The arrays of an archive holding exactly the `expected` names with those dtypes, and
    any of the `optional` ones."""
    arrays = read_npz(data, what, limits)
    optional = optional or {}
    expected = {**expected, **{name: dtype for name, dtype in optional.items()
                               if name in arrays}}
    if set(arrays) != set(expected):
        missing = sorted(set(expected) - set(arrays))
        extra = sorted(set(arrays) - set(expected) - set(optional))
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
    arrays["truncated"] = np.array([game.truncated for game in games], np.bool_)
    return to_npz(arrays)


def decode_games(data: bytes, limits: ArchiveLimits = DEFAULT_LIMITS) -> list[GameRecord]:
    """The games of an upload, split by `lengths`. Only the archive's structure is checked
    here; what the games hold is the replay buffer's `check`, and the rules `check_rules`."""
    required = {name: dtype for name, dtype in GAME_FIELDS.items() if name not in ADDED_LATER}
    arrays = from_npz(data, "games", {**required, "lengths": np.int32}, limits,
                      optional=ADDED_LATER)
    lengths = arrays["lengths"]
    if lengths.ndim != 1 or len(lengths) == 0:
        raise WireError("games: lengths must be a non-empty 1-d array")
    truncated = arrays.get("truncated", np.zeros(len(lengths), np.bool_))
    if truncated.shape != lengths.shape:
        raise WireError(f"games: truncated has shape {truncated.shape}, expected one flag per "
                        f"game {lengths.shape}")
    if (lengths < 1).any():
        raise WireError("games: every game must have at least one move")
    total = int(lengths.sum())
    if "legal" not in arrays:
        arrays["legal"] = legal_from_search(arrays["policies"], arrays["actions"])
    for name in GAME_FIELDS:
        if arrays[name].ndim == 0 or len(arrays[name]) != total:
            raise WireError(f"games: {name} has shape {arrays[name].shape}, but the lengths "
                            f"sum to {total} rows")
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    return [GameRecord(**{name: arrays[name][start:end] for name in GAME_FIELDS},
                       truncated=bool(cut))
            for start, end, cut in zip(bounds[:-1], bounds[1:], truncated)]


BATCH_DTYPES = {name: (np.int64 if name == "indices" else
                       np.int32 if name in ("actions", "target_to_play") else np.float32)
                for name in TrainingBatch._fields}


def encode_batch(batch: TrainingBatch) -> bytes:
    return to_npz(batch._asdict())


def decode_batch(data: bytes) -> TrainingBatch:
    return TrainingBatch(**from_npz(data, "batch", BATCH_DTYPES))


POSITION_FIELDS = {"position_ids": np.int64, "observations": np.float32, "legal": np.bool_,
                   "to_play": np.int32, "move_number": np.int32}


def encode_positions(positions: StoredPositions) -> bytes:
    return to_npz({name: np.asarray(getattr(positions, name), dtype)
                   for name, dtype in POSITION_FIELDS.items()})


def decode_positions(data: bytes) -> StoredPositions:
    """Stored positions sent for reanalysis: one row per position in every array."""
    arrays = from_npz(data, "positions", POSITION_FIELDS)
    rows = {len(array) if array.ndim else -1 for array in arrays.values()}
    if len(rows) != 1 or arrays["legal"].ndim != 2:
        raise WireError("positions: every array must have one row per position")
    return StoredPositions(**arrays)


TARGET_FIELDS = {"position_ids": np.int64, "policies": np.float32, "root_values": np.float32}


def encode_targets(position_ids: np.ndarray, policies: np.ndarray,
                   root_values: np.ndarray) -> bytes:
    return to_npz({"position_ids": np.asarray(position_ids, np.int64),
                   "policies": np.asarray(policies, np.float32),
                   "root_values": np.asarray(root_values, np.float32)})


def decode_targets(data: bytes, limits: ArchiveLimits = DEFAULT_LIMITS
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A reanalysis's targets: ids [N], policies [N, A], root values [N, P]; what they hold is
    checked by the replay buffer (`refresh_targets`)."""
    arrays = from_npz(data, "targets", TARGET_FIELDS, limits)
    ids, policies, values = (arrays[name] for name in TARGET_FIELDS)
    if ids.ndim != 1 or policies.ndim != 2 or values.ndim != 2 or \
            not len(ids) == len(policies) == len(values):
        raise WireError(f"targets: expected position_ids [N], policies [N, A] and root_values "
                        f"[N, P], got {ids.shape}, {policies.shape} and {values.shape}")
    return ids, policies, values


PRIORITY_FIELDS = {"indices": np.int64, "errors": np.float32}


def encode_priorities(indices: np.ndarray, errors: np.ndarray) -> bytes:
    return to_npz({"indices": np.asarray(indices, np.int64),
                   "errors": np.asarray(errors, np.float32)})


def decode_priorities(data: bytes, limits: ArchiveLimits = DEFAULT_LIMITS
                      ) -> tuple[np.ndarray, np.ndarray]:
    arrays = from_npz(data, "priorities", PRIORITY_FIELDS, limits)
    indices, errors = arrays["indices"], arrays["errors"]
    if indices.ndim != 1 or indices.shape != errors.shape:
        raise WireError(f"priorities: indices {indices.shape} and errors {errors.shape} must "
                        f"be equal 1-d shapes")
    if not np.isfinite(errors).all() or (errors < 0).any():
        raise WireError("priorities: errors must be finite and non-negative")
    return indices, errors
