"""The learner: a K-step unrolled train step as one `tf.function`, its losses and optimizer.

Losses follow the MuZero pseudocode: at step 0 the representation + prediction output is scored
on value and policy; at each of the K unrolled steps the dynamics + prediction output is scored on
reward, value, policy and the player to move next. The unrolled steps' losses are scaled by 1/K and
the gradient flowing back through each new hidden state by 0.5 (appendix G), every example by its
importance weight. Past the end of a game cut by a time limit, values and rewards are unknown and
masked out. Values and rewards use MSE on scalars, or cross-entropy against two-hot targets
on the categorical support. An L2 penalty covers every weight; gradients are clipped by global norm.
"""

from __future__ import annotations

from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf

from muzero import support
from muzero.config import Config
from muzero.network import MuZeroNetwork
from muzero.replay import TrainingBatch

LOSS_NAMES = ("value", "reward", "policy", "to_play", "l2", "total")


class StepResult(NamedTuple):
    """What one train step reports: mean losses and new priorities."""

    losses: dict[str, float]  # LOSS_NAMES -> importance-weighted batch mean
    value_errors: np.ndarray  # [B]: max over players |predicted value - target| at step 0


def learning_rate_schedule(config: Config) -> keras.optimizers.schedules.LearningRateSchedule:
    """Exponential decay from `learning_rate` to `learning_rate * lr_decay` over the run."""
    return keras.optimizers.schedules.ExponentialDecay(
        config.learning_rate, decay_steps=max(config.num_steps, 1),
        decay_rate=max(config.lr_decay, 1e-12))


def averaging_momentum(config: Config) -> float:
    """The momentum of the agent's moving average over about `agent_averaging` train steps,
    1 - 1 / N (0: no average)."""
    span = config.agent_averaging
    return 0.0 if span <= 1 else 1.0 - 1.0 / span


def build_optimizer(config: Config) -> keras.optimizers.Optimizer:
    """The optimizer; with `agent_averaging` it keeps the moving average of the trained weights
    among its own variables (Keras's EMA), so that the average is saved and restored with the
    optimizer state in both modes, and a server checks uploads against the same variables."""
    schedule = learning_rate_schedule(config)
    momentum = averaging_momentum(config)
    averaging = dict(use_ema=True, ema_momentum=momentum) if momentum > 0 else {}
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(schedule, momentum=config.momentum, **averaging)
    return keras.optimizers.Adam(schedule, **averaging)


def load_average(network: MuZeroNetwork, optimizer: keras.optimizers.Optimizer) -> None:
    """Overwrite `network`'s trainable weights with the moving average `optimizer` keeps
    (Keras's EMA, `agent_averaging`); the learner and the server's agent weights both use it."""
    optimizer.finalize_variable_values(network.trainable_variables)


def _step_result(losses: tf.Tensor, errors: tf.Tensor) -> StepResult:
    return StepResult(dict(zip(LOSS_NAMES, losses.numpy().tolist())), errors.numpy())


def _scale_gradient(tensor: tf.Tensor, scale: float) -> tf.Tensor:
    """Identity forward, gradient times `scale` backward."""
    return tensor * scale + tf.stop_gradient(tensor) * (1.0 - scale)


class Learner:
    """Owns the optimizer and the compiled train step of one network."""

    def __init__(self, network: MuZeroNetwork, config: Config):
        self.network = network
        self.config = config
        self.optimizer = build_optimizer(config)
        self.optimizer.build(network.trainable_variables)
        spec = network.spec
        K, P, A = config.num_unroll_steps, spec.num_players, spec.num_actions
        signature = TrainingBatch(
            observations=tf.TensorSpec((None,) + spec.observation_shape, tf.float32),
            actions=tf.TensorSpec((None, K), tf.int32),
            target_values=tf.TensorSpec((None, K + 1, P), tf.float32),
            target_rewards=tf.TensorSpec((None, K + 1, P), tf.float32),
            value_mask=tf.TensorSpec((None, K + 1), tf.float32),
            reward_mask=tf.TensorSpec((None, K + 1), tf.float32),
            target_policies=tf.TensorSpec((None, K + 1, A), tf.float32),
            policy_mask=tf.TensorSpec((None, K + 1), tf.float32),
            target_to_play=tf.TensorSpec((None, K + 1), tf.int32),
            to_play_mask=tf.TensorSpec((None, K + 1), tf.float32),
            weights=tf.TensorSpec((None,), tf.float32),
            indices=tf.TensorSpec((None,), tf.int64))
        self._train = tf.function(self._train_graph, input_signature=[signature],
                                  jit_compile=config.jit_compile, reduce_retracing=False)
        self._train_concrete = None  # traced on the first step (docs/performance.md)
        self._evaluate = None

    @property
    def step(self) -> int:
        """Train steps taken (the optimizer's counter, saved with it)."""
        return int(self.optimizer.iterations.numpy())

    @property
    def averaging(self) -> bool:
        return bool(self.optimizer.use_ema)

    def agent_weights(self) -> list[np.ndarray]:
        """The weights the agent plays with: the moving average where the config keeps one
        (trainable weights averaged, the rest as trained), else the trained weights."""
        trained = self.network.get_weights()
        if not self.averaging:
            return trained
        load_average(self.network, self.optimizer)
        averaged = self.network.get_weights()
        self.network.set_weights(trained)
        return averaged

    def save_agent_weights_file(self, path) -> None:
        """Write `agent_weights()` as a weights file of the network (spec-tagged)."""
        trained = self.network.get_weights()
        load_average(self.network, self.optimizer)
        try:
            self.network.save_weights_file(path)
        finally:
            self.network.set_weights(trained)

    def tracing_count(self) -> int:
        return self._train.experimental_get_tracing_count()

    def train_step(self, batch: TrainingBatch) -> StepResult:
        """One step on `batch`, called through the train function's one concrete function (a
        `tf.function` call binds its twelve arguments anew each step), its losses read back
        in one transfer rather than one tensor slice each."""
        if self._train_concrete is None:
            self._train_concrete = self._train.get_concrete_function()
        return _step_result(*self._train_concrete(batch))

    # ----- the graph -----

    def _scalar_loss(self, prediction: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
        """[B]: summed over players. prediction [B, P] or support logits [B, P, 2K+1]."""
        size = self.network.spec.scalar_support_size
        if size:
            target = support.to_two_hot(target, size)
            return tf.reduce_sum(tf.nn.softmax_cross_entropy_with_logits(target, prediction), -1)
        return tf.reduce_sum(tf.square(prediction - target), axis=-1)

    def _as_scalars(self, prediction: tf.Tensor) -> tf.Tensor:
        size = self.network.spec.scalar_support_size
        return support.from_logits(prediction, size) if size else prediction

    def _losses(self, batch: TrainingBatch):
        """Per-example losses [B] of each kind, summed over steps (unrolled ones scaled by 1/K),
        and the step-0 value errors [B]."""
        network, config = self.network, self.config
        K = config.num_unroll_steps
        hidden = network.representation(batch.observations, training=True)
        policy_logits, value = network.prediction(hidden, training=True)
        errors = tf.reduce_max(tf.abs(self._as_scalars(value) - batch.target_values[:, 0]), -1)
        value_loss = self._scalar_loss(value, batch.target_values[:, 0])
        policy_loss = tf.nn.softmax_cross_entropy_with_logits(
            batch.target_policies[:, 0], policy_logits) * batch.policy_mask[:, 0]
        reward_loss = tf.zeros_like(value_loss)
        to_play_loss = tf.zeros_like(value_loss)
        for k in range(1, K + 1):
            hidden, reward, to_play_logits = network.dynamics([hidden, batch.actions[:, k - 1]],
                                                              training=True)
            hidden = _scale_gradient(hidden, 0.5)
            policy_logits, value = network.prediction(hidden, training=True)
            value_loss += self._scalar_loss(value, batch.target_values[:, k]) \
                * batch.value_mask[:, k] / K
            reward_loss += self._scalar_loss(reward, batch.target_rewards[:, k]) \
                * batch.reward_mask[:, k] / K
            policy_loss += tf.nn.softmax_cross_entropy_with_logits(
                batch.target_policies[:, k], policy_logits) * batch.policy_mask[:, k] / K
            to_play_loss += tf.nn.sparse_softmax_cross_entropy_with_logits(
                batch.target_to_play[:, k], to_play_logits) * batch.to_play_mask[:, k] / K
        return value_loss, reward_loss, policy_loss, to_play_loss, errors

    def _weighted_losses(self, batch: TrainingBatch):
        """(losses stacked in LOSS_NAMES order, the total to minimise, step-0 value errors)."""
        config = self.config
        value, reward, policy, to_play, errors = self._losses(batch)
        means = [tf.reduce_mean(loss * batch.weights)
                 for loss in (value, reward, policy, to_play)]
        l2 = config.weight_decay * tf.add_n([tf.reduce_sum(tf.square(v))
                                             for v in self.network.trainable_variables])
        total = config.value_loss_weight * means[0] + means[1] + means[2] + means[3] + l2
        return tf.stack(means + [l2, total]), total, errors

    def _train_graph(self, batch: TrainingBatch):
        variables = self.network.trainable_variables
        with tf.GradientTape() as tape:
            losses, total, errors = self._weighted_losses(batch)
        gradients = tape.gradient(total, variables)
        gradients, _ = tf.clip_by_global_norm(gradients, self.config.max_grad_norm)
        self.optimizer.apply(gradients, variables)
        return losses, errors

    def evaluate_losses(self, batch: TrainingBatch) -> StepResult:
        """The losses of `batch` under the current weights, changing nothing."""
        if self._evaluate is None:
            self._evaluate = tf.function(lambda b: self._weighted_losses(b)[::2])
        return _step_result(*self._evaluate(batch))

    # ----- optimizer state, for exact resume -----

    def optimizer_state(self) -> list[np.ndarray]:
        return [variable.numpy() for variable in self.optimizer.variables]

    def set_optimizer_state(self, arrays: list[np.ndarray]) -> None:
        variables = self.optimizer.variables
        check_optimizer_state(variables, arrays)
        for variable, array in zip(variables, arrays):
            variable.assign(array)


def check_optimizer_state(variables: list, arrays: list[np.ndarray]) -> None:
    """Raise `ValueError` unless `arrays` has one array of each optimizer variable's shape, in
    order (a state saved by the same optimizer of the same network)."""
    if len(arrays) != len(variables):
        raise ValueError(f"optimizer state has {len(arrays)} arrays, the optimizer of this "
                         f"network has {len(variables)}")
    for index, (variable, array) in enumerate(zip(variables, arrays)):
        if tuple(variable.shape) != array.shape:
            raise ValueError(f"optimizer state array {index} has shape {array.shape}, "
                             f"expected {tuple(variable.shape)}")
