"""Process-wide TensorFlow settings, applied explicitly at start-up (never at import)."""

from __future__ import annotations

import tensorflow as tf

from muzero.config import Config


def configure_tensorflow(config: Config) -> None:
    """Apply `config.tf_threads`; must run before TensorFlow executes its first operation."""
    if not config.tf_threads:
        return
    current = tf.config.threading.get_intra_op_parallelism_threads()
    if current == config.tf_threads:
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(config.tf_threads)
    except RuntimeError:
        raise RuntimeError(
            f"tf_threads={config.tf_threads} must be set before TensorFlow starts; this process "
            f"already runs TensorFlow with {current or 'default'} intra-op threads") from None
