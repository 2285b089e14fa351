"""Test-wide settings: quiet TensorFlow start-up logs (set before anything imports TensorFlow)."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
