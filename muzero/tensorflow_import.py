"""TensorFlow imported once, without the notices its native libraries print while it loads.

TensorFlow 2.19-2.21 prints absl's notices at import whatever TF_CPP_MIN_LOG_LEVEL says
(tensorflow/tensorflow#100442), twice (two libraries, each with its own logging), and, unless
that variable is set, which CPU instructions its build leaves unused: up to eight lines before a
command's or a script's first line, then more at its first operations (no CUDA driver, XLA's
start). The command line and the package's lazy `Agent` and `load_agent` import it here, so
those lines are held back, every other line passes, and TensorFlow's native log is off unless
the user's TF_CPP_MIN_LOG_LEVEL asks for it (as the command line has always done).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator

TENSORFLOW_IMPORT_NOTICES = ("All log messages before absl::InitializeLog() is called",
                             "oneDNN custom operations are on",
                             "Could not find cuda drivers on your machine",
                             "This TensorFlow binary is optimized to use available CPU",
                             "To enable the following instructions:")


@contextlib.contextmanager
def without_native_notices(notices: tuple[str, ...]) -> Iterator[None]:
    """Hold back the lines containing one of `notices` that native code (or Python) writes to
    the process's standard error meanwhile; pass every other line on, in order, at the end."""
    sys.stderr.flush()
    kept = os.dup(2)
    with tempfile.TemporaryFile() as written:
        os.dup2(written.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(kept, 2)
            os.close(kept)
            written.seek(0)
            for line in written.read().decode(errors="replace").splitlines(keepends=True):
                if not any(notice in line for notice in notices):
                    sys.stderr.write(line)
            sys.stderr.flush()


def import_tensorflow() -> None:
    """Import TensorFlow unless it is already, holding back its import notices."""
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # read when TensorFlow loads
    with without_native_notices(TENSORFLOW_IMPORT_NOTICES):
        import tensorflow  # noqa: F401
