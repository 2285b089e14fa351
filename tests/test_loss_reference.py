"""The learner's losses against a plain NumPy reference written from the paper's definitions:
the K-step unroll with unrolled losses scaled by 1/K, masks past the end (and past a time limit),
MSE or cross-entropy on a two-hot categorical support, importance weights, L2; and the 0.5
gradient scale on hidden states, which changes gradients but no value."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from test_training import filled_replay

from muzero.network import network_for_game
from muzero.training import LOSS_NAMES, Learner, _scale_gradient


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _two_hot(x: np.ndarray, size: int) -> np.ndarray:
    """h(x) = sign(x)(sqrt(|x| + 1) - 1) + 0.001 x, clipped to [-size, size], split between the
    two nearest integer atoms."""
    h = np.clip(np.sign(x) * (np.sqrt(np.abs(x) + 1) - 1) + 0.001 * x, -size, size)
    low = np.floor(h)
    upper_weight = h - low
    out = np.zeros(x.shape + (2 * size + 1,))
    index = (low + size).astype(int)
    np.put_along_axis(out, index[..., None], (1 - upper_weight)[..., None], axis=-1)
    upper = np.minimum(index + 1, 2 * size)
    current = np.take_along_axis(out, upper[..., None], axis=-1)
    np.put_along_axis(out, upper[..., None], current + upper_weight[..., None], axis=-1)
    return out


def _scalar_loss(prediction: np.ndarray, target: np.ndarray, size: int) -> np.ndarray:
    """[B], summed over players."""
    if size:
        return -(_two_hot(target, size) * _log_softmax(prediction)).sum(axis=(-1, -2))
    return ((prediction - target) ** 2).sum(axis=-1)


def reference_losses(network, config, batch) -> dict[str, float]:
    size, K = config.scalar_support_size, config.num_unroll_steps

    def run(model, inputs):
        return [np.asarray(output, np.float64) for output in model(inputs, training=True)]

    hidden = np.asarray(network.representation(batch.observations, training=True))
    policy, value = run(network.prediction, hidden)
    losses = {"value": _scalar_loss(value, batch.target_values[:, 0], size),
              "reward": np.zeros(len(hidden)),
              "policy": -(batch.target_policies[:, 0] * _log_softmax(policy)).sum(-1)
              * batch.policy_mask[:, 0],
              "to_play": np.zeros(len(hidden))}
    for k in range(1, K + 1):
        hidden, reward, to_play = (np.asarray(output) for output in network.dynamics(
            [hidden, batch.actions[:, k - 1]], training=True))
        reward, to_play = reward.astype(np.float64), to_play.astype(np.float64)
        policy, value = run(network.prediction, hidden)
        losses["value"] += (_scalar_loss(value, batch.target_values[:, k], size)
                            * batch.value_mask[:, k] / K)
        losses["reward"] += (_scalar_loss(reward, batch.target_rewards[:, k], size)
                             * batch.reward_mask[:, k] / K)
        losses["policy"] += (-(batch.target_policies[:, k] * _log_softmax(policy)).sum(-1)
                             * batch.policy_mask[:, k] / K)
        chosen = np.take_along_axis(_log_softmax(to_play), batch.target_to_play[:, k, None], -1)
        losses["to_play"] += -chosen[:, 0] * batch.to_play_mask[:, k] / K
    means = {name: float(np.mean(loss * batch.weights)) for name, loss in losses.items()}
    means["l2"] = config.weight_decay * sum(float((np.asarray(w, np.float64) ** 2).sum())
                                            for w in network.trainable_variables)
    means["total"] = (config.value_loss_weight * means["value"] + means["reward"]
                      + means["policy"] + means["to_play"] + means["l2"])
    return means


@pytest.mark.parametrize("support_size", [0, 5])
def test_losses_match_the_numpy_reference(support_size):
    plugin, config, replay = filled_replay("tictactoe", 24, scalar_support_size=support_size,
                                           value_loss_weight=0.5, weight_decay=1e-3)
    network = network_for_game(plugin, config)
    learner = Learner(network, config)
    batch = replay.sample(config.batch_size)
    batch = batch._replace(weights=np.linspace(0.2, 2.0, len(batch.weights), dtype=np.float32))
    reported = learner.evaluate_losses(batch).losses
    expected = reference_losses(network, config, batch)
    assert set(reported) == set(LOSS_NAMES) == set(expected)
    for name in LOSS_NAMES:
        assert reported[name] == pytest.approx(expected[name], rel=2e-4, abs=1e-6), name
    # masks past the cut of a game stopped by a time limit: random ones, as the reference
    rng = np.random.default_rng(support_size)
    masked = batch._replace(value_mask=(rng.random(batch.value_mask.shape) < 0.5).astype(
        np.float32), reward_mask=(rng.random(batch.reward_mask.shape) < 0.5).astype(np.float32))
    masked_losses = learner.evaluate_losses(masked).losses
    expected_masked = reference_losses(network, config, masked)
    for name in ("value", "reward"):
        assert masked_losses[name] == pytest.approx(expected_masked[name], rel=2e-4), name
        assert masked_losses[name] != pytest.approx(reported[name], rel=1e-3), name
    # the importance weights matter: uniform weights give another value loss
    uniform = learner.evaluate_losses(batch._replace(weights=np.ones_like(batch.weights)))
    assert uniform.losses["value"] != pytest.approx(reported["value"], rel=1e-3)


def test_hidden_state_gradient_is_scaled_by_a_half_and_the_value_kept():
    x = tf.constant([[1.0, -2.0, 3.0]])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = _scale_gradient(x, 0.5)
        total = tf.reduce_sum(y * tf.constant([[1.0, 2.0, 3.0]]))
    np.testing.assert_array_equal(y.numpy(), x.numpy())
    np.testing.assert_allclose(tape.gradient(total, x).numpy(), [[0.5, 1.0, 1.5]])
