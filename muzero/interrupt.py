"""Ctrl-C as a request to stop at the next safe point, not an exception raised anywhere.

A KeyboardInterrupt can land in the middle of a replay insert, a train step or a checkpoint
write; the state saved after it is then half updated, and TensorFlow interrupted inside a call
can crash the process (a CI run once died with SIGSEGV that way). The first Ctrl-C only sets an
event the run checks between moves and rounds; a second one raises KeyboardInterrupt at once,
for a user who will not wait.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator

STDERR = 2


@contextlib.contextmanager
def stop_on_ctrl_c(message: str) -> Iterator[threading.Event]:
    """Within the block, the first SIGINT sets the yielded event and writes `message` to
    stderr; the second raises KeyboardInterrupt. Outside the main thread (where Python cannot
    install handlers), or where SIGINT is ignored (a job started in the background by a
    script inherits that, and Python keeps it), the event is only set by the caller."""
    stop = threading.Event()
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is signal.SIG_IGN):
        yield stop
        return

    def handle(signum: int, frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        # Straight to the file descriptor: a print here could re-enter a print the main
        # thread was in the middle of, which Python refuses with a RuntimeError.
        os.write(STDERR, f"\n{message}\n".encode())

    previous = signal.signal(signal.SIGINT, handle)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)
