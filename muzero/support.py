"""Categorical value/reward support (MuZero appendix F) and its invertible scaling transform.

h(x) = sign(x) (sqrt(|x| + 1) - 1) + eps x squeezes large returns; a scalar becomes a "two-hot"
distribution over the integers -K..K of h(x), and a predicted distribution becomes a scalar by its
expectation followed by the exact inverse of h. All functions take TensorFlow or NumPy inputs of
any float dtype and keep it (float64 round-trips to ~1e-12).
"""

from __future__ import annotations

import tensorflow as tf

EPSILON = 0.001


def scale(x: tf.Tensor) -> tf.Tensor:
    """h(x) = sign(x) (sqrt(|x| + 1) - 1) + eps x."""
    x = tf.convert_to_tensor(x)
    return tf.sign(x) * (tf.sqrt(tf.abs(x) + 1.0) - 1.0) + EPSILON * x


def unscale(y: tf.Tensor) -> tf.Tensor:
    """The exact inverse of `scale`.

    With u = sqrt(|x| + 1), |y| = u - 1 + eps (u^2 - 1) is a quadratic in u. Its root
    (sqrt(1 + 4 eps c) - 1) / (2 eps), with c = |y| + 1 + eps, is computed as
    2c / (sqrt(1 + 4 eps c) + 1) to avoid cancellation in float32.
    """
    y = tf.convert_to_tensor(y)
    c = tf.abs(y) + 1.0 + EPSILON
    root = 2.0 * c / (tf.sqrt(1.0 + 4.0 * EPSILON * c) + 1.0)
    return tf.sign(y) * (tf.square(root) - 1.0)


def to_two_hot(x: tf.Tensor, support_size: int) -> tf.Tensor:
    """Scalars [...] -> distributions [..., 2K+1] over h(x) in -K..K (clipped at the ends)."""
    y = tf.clip_by_value(scale(x), -float(support_size), float(support_size))
    lower = tf.floor(y)
    upper_weight = y - lower
    lower_index = tf.cast(lower, tf.int32) + support_size
    width = 2 * support_size + 1
    # At y = K the upper atom is out of range, and its weight is 0.
    upper_index = tf.minimum(lower_index + 1, width - 1)
    return (tf.one_hot(lower_index, width, dtype=y.dtype) * (1.0 - upper_weight)[..., None]
            + tf.one_hot(upper_index, width, dtype=y.dtype) * upper_weight[..., None])


def from_distribution(probabilities: tf.Tensor, support_size: int) -> tf.Tensor:
    """Distributions [..., 2K+1] over h(x) -> scalars [...]."""
    probabilities = tf.convert_to_tensor(probabilities)
    atoms = tf.range(-support_size, support_size + 1, dtype=probabilities.dtype)
    return unscale(tf.reduce_sum(probabilities * atoms, axis=-1))


def from_logits(logits: tf.Tensor, support_size: int) -> tf.Tensor:
    """Logits [..., 2K+1] -> scalars [...]."""
    return from_distribution(tf.nn.softmax(logits, axis=-1), support_size)
