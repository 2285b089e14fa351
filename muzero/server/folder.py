"""The server's data folder as a resource one process owns: an exclusive lock naming its holder,
and the leftovers of a process that was killed mid-write cleaned up at start.

Two servers on one folder would number games and weights from their own counters and hand out
the same position ids; the lock makes the second one refuse to start instead. The lock is
`flock` on `server.lock`, released by the kernel when the holder exits, however it exits, so a
SIGKILLed server never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import time
from pathlib import Path

LOCK_FILE = "server.lock"
TEMPORARY_PREFIX = ".upload-"  # weights and optimizer files being written
DEFAULT_KEEP_VERSIONS = 20  # newest weights versions kept besides the agent's (versions.py)
KEEP_GAMES = ("all", "window")  # every upload's games, or the replay window's only (archive.py)
DEFAULT_KEEP_GAMES = "window"  # nothing reads games that left the window; `all` grows ~4 GB a day


class FolderLocked(RuntimeError):
    """Another process serves this data folder; the message names it."""


class FolderLock:
    """Holds `folder`'s lock until `release` (or the process's end)."""

    def __init__(self, folder: Path):
        self.path = folder / LOCK_FILE
        handle = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(handle)
            os.close(handle)
            raise FolderLocked(f"{folder} is in use by another server ({holder}); stop it "
                               f"first, or give this one another --data-dir") from None
        os.ftruncate(handle, 0)
        os.pwrite(handle, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                      "since": time.strftime("%Y-%m-%d %H:%M:%S")}).encode(), 0)
        self._handle: int | None = handle

    def release(self) -> None:
        if self._handle is not None:
            os.close(self._handle)  # closing the descriptor releases the flock
            self._handle = None


def _read_holder(handle: int) -> str:
    try:
        holder = json.loads(os.pread(handle, 4096, 0) or b"{}")
        return f"pid {holder['pid']} on {holder['host']}, since {holder['since']}"
    except (ValueError, KeyError, TypeError):
        return "a process that has not written its name yet"


def remove_leftovers(folder: Path, weights_dir: Path) -> list[Path]:
    """Delete what a killed server left half-written (never a committed file: those are
    renamed into place only when complete). Returns what was removed."""
    leftovers = [path for path in weights_dir.glob(f"{TEMPORARY_PREFIX}*")]
    leftovers += [path for path in folder.glob(f"{TEMPORARY_PREFIX}*")]
    for path in leftovers:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return leftovers
