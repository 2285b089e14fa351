"""Test-wide settings: quiet TensorFlow start-up logs (set before anything imports TensorFlow)."""

import os
import signal

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture
def ctrl_c_delivered():
    """SIGINT raises KeyboardInterrupt in this process during the test, as in a terminal. A CI
    script that starts the suite in the background leaves SIGINT ignored, and Python keeps that."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)
