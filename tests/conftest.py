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


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true",
                     help="also run the slow tier (tests marked slow: long fuzzing runs)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow tier: give --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
