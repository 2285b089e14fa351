"""The network as two `tf.function`s with fixed input signatures, called with NumPy arrays.

Batches are zero-padded up to the next of a few bucket sizes, so the functions only ever see that
handful of shapes: one trace each (the batch axis is None in the signature) and, with XLA, one
compiled program per bucket. Larger batches run in chunks of the largest bucket.

Each function is called through its one concrete function: a `tf.function` call binds and
looks up its arguments on every call, about a third of a small network's call (tic-tac-toe at
64 rows: 0.72 ms through the `tf.function`, 0.51 ms through the concrete function;
docs/performance.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from muzero import support
from muzero.config import Config
from muzero.network import MuZeroNetwork, network_for_game
from muzero.plugins import GamePlugin
from muzero.search.batched import check_array
from muzero.search.model import InitialOutput, RecurrentOutput

DEFAULT_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


def bucket_for(size: int, buckets: Sequence[int]) -> int:
    """The smallest bucket that holds `size` rows (the largest bucket if none does)."""
    for bucket in buckets:
        if bucket >= size:
            return bucket
    return buckets[-1]


class BatchedInference:
    """Implements the search's `Model` protocol with a `MuZeroNetwork`."""

    def __init__(self, network: MuZeroNetwork, buckets: Sequence[int] = DEFAULT_BUCKETS,
                 jit_compile: bool = False):
        if not buckets or min(buckets) < 1:
            raise ValueError(f"buckets must be positive sizes, got {buckets!r}")
        self.network = network
        self.spec = network.spec
        self.hidden_shape = network.hidden_shape
        self.buckets = tuple(sorted(set(buckets)))
        self._initial = tf.function(
            self._initial_graph, jit_compile=jit_compile, reduce_retracing=False,
            input_signature=[tf.TensorSpec((None,) + self.spec.observation_shape, tf.float32)])
        self._recurrent = tf.function(
            self._recurrent_graph, jit_compile=jit_compile, reduce_retracing=False,
            input_signature=[tf.TensorSpec((None,) + self.hidden_shape, tf.float32),
                             tf.TensorSpec((None,), tf.int32)])
        self._concrete: dict = {}  # tf.function -> its concrete function, traced on first use

    def warm_up(self, largest: int | None = None) -> None:
        """Trace both functions and compile every bucket up to `largest` rows now, so that no
        compilation lands in the middle of self-play or a benchmark."""
        for bucket in self.buckets:
            if largest is not None and bucket > largest:
                break
            initial = self.initial_inference(
                np.zeros((bucket,) + self.spec.observation_shape, np.float32))
            self.recurrent_inference(initial.hidden, np.zeros(bucket, np.int32))

    def tracing_counts(self) -> tuple[int, int]:
        """How often each function has been traced (1 each after warm-up, and it stays there)."""
        return (self._initial.experimental_get_tracing_count(),
                self._recurrent.experimental_get_tracing_count())

    def _scalars(self, outputs: tf.Tensor) -> tf.Tensor:
        """[B, P] from scalar heads, or from support logits [B, P, 2K+1]."""
        if self.spec.scalar_support_size:
            return support.from_logits(outputs, self.spec.scalar_support_size)
        return outputs

    def _initial_graph(self, observations):
        hidden = self.network.representation(observations, training=False)
        policy_logits, value = self.network.prediction(hidden, training=False)
        return hidden, self._scalars(value), policy_logits

    def _recurrent_graph(self, hidden, actions):
        next_hidden, reward, to_play_logits = self.network.dynamics([hidden, actions],
                                                                    training=False)
        policy_logits, value = self.network.prediction(next_hidden, training=False)
        to_play = tf.argmax(to_play_logits, axis=-1, output_type=tf.int32)
        return next_hidden, self._scalars(reward), self._scalars(value), to_play, policy_logits

    def _run(self, function, inputs: tuple[np.ndarray, ...]) -> list[np.ndarray]:
        """Call `function` on zero-padded bucket-sized chunks; return NumPy outputs of B rows."""
        size = len(inputs[0])
        if size == 0:
            raise ValueError("inference needs at least one row, got an empty batch")
        concrete = self._concrete.get(function)
        if concrete is None:
            concrete = self._concrete[function] = function.get_concrete_function()
        chunk = self.buckets[-1]
        pieces = []
        for start in range(0, size, chunk):
            rows = min(chunk, size - start)
            bucket = bucket_for(rows, self.buckets)
            padded = []
            for array in inputs:
                part = array[start:start + rows]
                if bucket > rows:
                    part = np.concatenate([part, np.zeros((bucket - rows,) + part.shape[1:],
                                                          part.dtype)])
                padded.append(tf.constant(part))
            pieces.append([output.numpy()[:rows] for output in concrete(*padded)])
        if len(pieces) == 1:
            return pieces[0]
        return [np.concatenate(parts) for parts in zip(*pieces)]

    def initial_inference(self, observations: np.ndarray) -> InitialOutput:
        """observations [B, *observation_shape] float32 -> hidden, value [B, P], logits [B, A]."""
        observations = check_array("observations", observations,
                                   (len(observations),) + self.spec.observation_shape, np.float32)
        return InitialOutput(*self._run(self._initial, (observations,)))

    def recurrent_inference(self, hidden: np.ndarray, actions: np.ndarray) -> RecurrentOutput:
        """hidden [B, *hidden_shape] float32, actions [B] int32 -> the dynamics + prediction."""
        hidden = check_array("hidden", hidden, (len(hidden),) + self.hidden_shape, np.float32)
        actions = check_array("actions", actions, (len(hidden),), np.int32)
        if len(actions) and (actions.min() < 0 or actions.max() >= self.spec.num_actions):
            raise ValueError(f"actions: out of range [0, {self.spec.num_actions})")
        return RecurrentOutput(*self._run(self._recurrent, (hidden, actions)))


def inference_for_game(plugin: GamePlugin, config: Config) -> BatchedInference:
    """Batched inference over a fresh network for the plugin's game, with the config's options."""
    return BatchedInference(network_for_game(plugin, config), jit_compile=config.jit_compile)
