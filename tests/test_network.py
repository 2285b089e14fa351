import json

import h5py
import numpy as np
import pytest
import tensorflow as tf

from muzero.batching.inference import BatchedInference
from muzero.network import WeightsMismatchError, network_for_game
from muzero.plugins import load_game
from muzero.support import unscale

SMALL = dict(channels=8, num_blocks=1, hidden_size=16, mlp_layers=1, jit_compile=False)


def small_config(game, **changes):
    """Tic-tac-toe's planes exercise the residual tower here (its default network is the MLP)."""
    plugin = load_game(game)
    family = {"network": "resnet"} if game == "tictactoe" else {}
    return plugin, plugin.make_config().replace(**{**SMALL, **family, **changes})


@pytest.mark.parametrize("game, network, expected_hidden", [
    ("tictactoe", "resnet", (3, 3, 8)), ("tictactoe", "mlp", (16,)),
    ("onearmbandit", "mlp", (16,))])
@pytest.mark.parametrize("support_size", [0, 4])
def test_output_shapes_and_ranges(game, network, expected_hidden, support_size):
    plugin, config = small_config(game, scalar_support_size=support_size, network=network)
    network = network_for_game(plugin, config)
    inference = BatchedInference(network, jit_compile=False)
    spec = network.spec
    batch = 5
    rng = np.random.default_rng(0)
    observations = rng.random((batch,) + spec.observation_shape).astype(np.float32)
    initial = inference.initial_inference(observations)
    assert initial.hidden.shape == (batch,) + expected_hidden
    assert initial.value.shape == (batch, spec.num_players)
    assert initial.policy_logits.shape == (batch, spec.num_actions)
    actions = rng.integers(0, spec.num_actions, batch).astype(np.int32)
    recurrent = inference.recurrent_inference(initial.hidden, actions)
    assert recurrent.hidden.shape == initial.hidden.shape
    assert recurrent.reward.shape == recurrent.value.shape == (batch, spec.num_players)
    assert recurrent.to_play.dtype == np.int32
    assert ((recurrent.to_play >= 0) & (recurrent.to_play < spec.num_players)).all()
    for hidden in (initial.hidden, recurrent.hidden):  # min-max normalised per example
        flat = hidden.reshape(batch, -1)
        np.testing.assert_allclose(flat.min(axis=1), 0.0, atol=1e-6)
        np.testing.assert_allclose(flat.max(axis=1), 1.0, atol=1e-4)
    for output in initial + recurrent:
        assert np.isfinite(output).all()
    if support_size:
        limit = float(unscale(np.array(float(support_size))).numpy())
        assert (np.abs(recurrent.value) <= limit + 1e-4).all()
        raw_value = network.prediction(tf.constant(initial.hidden))[1]
        assert raw_value.shape == (batch, spec.num_players, 2 * support_size + 1)


def test_actions_change_the_dynamics():
    plugin, config = small_config("tictactoe")
    inference = BatchedInference(network_for_game(plugin, config), jit_compile=False)
    hidden = inference.initial_inference(np.zeros((9, 3, 3, 3), np.float32)).hidden
    next_hidden = inference.recurrent_inference(hidden, np.arange(9, dtype=np.int32)).hidden
    assert len({row.tobytes() for row in next_hidden}) == 9


def test_same_seed_same_network():
    plugin, config = small_config("tictactoe")
    first, second = network_for_game(plugin, config), network_for_game(plugin, config)
    other = network_for_game(plugin, config.replace(seed=1))
    for a, b in zip(first.get_weights(), second.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, c) for a, c in zip(first.get_weights(), other.get_weights()))


def test_no_retracing_across_batch_sizes_after_warm_up():
    plugin, config = small_config("tictactoe")
    inference = BatchedInference(network_for_game(plugin, config), buckets=(1, 4, 16),
                                 jit_compile=False)
    inference.warm_up()
    assert inference.tracing_counts() == (1, 1)
    rng = np.random.default_rng(0)
    for size in rng.integers(1, 40, 60):
        initial = inference.initial_inference(rng.random((size, 3, 3, 3)).astype(np.float32))
        inference.recurrent_inference(initial.hidden,
                                      rng.integers(0, 9, size).astype(np.int32))
    assert inference.tracing_counts() == (1, 1)


def test_xla_inference_matches_graph_inference_and_does_not_retrace():
    plugin, config = small_config("onearmbandit")
    network = network_for_game(plugin, config)
    plain = BatchedInference(network, buckets=(2, 8), jit_compile=False)
    compiled = BatchedInference(network, buckets=(2, 8), jit_compile=True)
    observations = np.random.default_rng(0).random((7, 3)).astype(np.float32)
    for size in (1, 2, 5, 7, 3):
        a = plain.initial_inference(observations[:size])
        b = compiled.initial_inference(observations[:size])
        np.testing.assert_allclose(a.value, b.value, rtol=1e-4, atol=1e-5)
    assert compiled.tracing_counts()[0] == 1


def test_padding_and_chunking_do_not_change_results():
    plugin, config = small_config("tictactoe")
    inference = BatchedInference(network_for_game(plugin, config), buckets=(1, 2, 4),
                                 jit_compile=False)
    rng = np.random.default_rng(1)
    observations = rng.random((11, 3, 3, 3)).astype(np.float32)
    together = inference.initial_inference(observations)  # chunks of 4, last one padded
    one_by_one = [inference.initial_inference(observations[i:i + 1]) for i in range(11)]
    np.testing.assert_allclose(together.value, np.concatenate([o.value for o in one_by_one]),
                               rtol=1e-5, atol=1e-6)


def test_bad_inference_inputs_are_named():
    plugin, config = small_config("tictactoe")
    inference = BatchedInference(network_for_game(plugin, config), jit_compile=False)
    with pytest.raises(ValueError, match="^observations: expected an array of shape"):
        inference.initial_inference(np.zeros((2, 3, 3), np.float32))
    hidden = inference.initial_inference(np.zeros((2, 3, 3, 3), np.float32)).hidden
    with pytest.raises(ValueError, match="^actions: expected"):
        inference.recurrent_inference(hidden, np.zeros(2, np.int64))
    with pytest.raises(ValueError, match=r"actions: out of range \[0, 9\)"):
        inference.recurrent_inference(hidden, np.array([0, 9], np.int32))


def test_weights_round_trip_bit_exactly(tmp_path):
    plugin, config = small_config("tictactoe")
    saved = network_for_game(plugin, config)
    path = tmp_path / "net.weights.h5"
    saved.save_weights_file(path)
    loaded = network_for_game(plugin, config.replace(seed=7))
    loaded.load_weights_file(path)
    assert len(saved.get_weights()) == len(loaded.get_weights()) > 10
    for a, b in zip(saved.get_weights(), loaded.get_weights()):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes()
    assert list(tmp_path.iterdir()) == [path]  # the temporary file is gone


def test_loading_weights_of_another_game_or_shape_fails_clearly(tmp_path):
    plugin, config = small_config("tictactoe")
    path = tmp_path / "ttt.weights.h5"
    network_for_game(plugin, config).save_weights_file(path)
    bandit_plugin, bandit_config = small_config("onearmbandit")
    with pytest.raises(WeightsMismatchError,
                       match="weights are for game 'tictactoe', this network is for "
                             "'onearmbandit'"):
        network_for_game(bandit_plugin, bandit_config).load_weights_file(path)
    wider = network_for_game(plugin, config.replace(channels=16))
    with pytest.raises(WeightsMismatchError, match="channels: file 8 vs network 16"):
        wider.load_weights_file(path)


def test_corrupt_or_foreign_weight_files_fail_clearly(tmp_path):
    plugin, config = small_config("tictactoe")
    network = network_for_game(plugin, config)
    before = [w.copy() for w in network.get_weights()]
    corrupt = tmp_path / "corrupt.weights.h5"
    corrupt.write_bytes(b"not an hdf5 file")
    with pytest.raises(WeightsMismatchError, match="not a readable HDF5 weights file"):
        network.load_weights_file(corrupt)
    foreign = tmp_path / "foreign.weights.h5"
    with h5py.File(foreign, "w") as file:
        file["x"] = np.zeros(3)
    with pytest.raises(WeightsMismatchError, match="no muzero metadata"):
        network.load_weights_file(foreign)
    with pytest.raises(ValueError, match="must end in .weights.h5"):
        network.save_weights_file(tmp_path / "net.h5")
    for a, b in zip(before, network.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_empty_batches_are_rejected():
    plugin, config = small_config("onearmbandit")
    inference = BatchedInference(network_for_game(plugin, config), jit_compile=False)
    with pytest.raises(ValueError, match="empty batch"):
        inference.initial_inference(np.zeros((0, 3), np.float32))


@pytest.mark.parametrize("residual", [False, True])
def test_residual_dynamics_carries_the_hidden_state_over(residual):
    """With the dynamics' last layer zeroed, a residual dynamics returns the state it was given
    (already min-max normalised); a plain one returns a constant."""
    plugin, config = small_config("tictactoe", network="mlp", residual_dynamics=residual)
    network = network_for_game(plugin, config)
    last = [layer for layer in network.dynamics.layers
            if isinstance(layer, tf.keras.layers.Dense)][-3]  # before the reward and to-play heads
    last.set_weights([np.zeros_like(w) for w in last.get_weights()])
    hidden = network.representation(np.random.default_rng(0).random((4, 3, 3, 3), np.float32))
    next_hidden = network.dynamics([hidden, tf.constant([0, 1, 2, 3])])[0].numpy()
    if residual:
        np.testing.assert_allclose(next_hidden, hidden.numpy(), atol=1e-5)
    else:
        np.testing.assert_allclose(next_hidden, 0.0, atol=1e-6)


def test_weights_saved_before_residual_dynamics_load_into_a_plain_dynamics(tmp_path):
    plugin, config = small_config("tictactoe", network="mlp", residual_dynamics=False)
    network = network_for_game(plugin, config)
    path = tmp_path / "old.weights.h5"
    network.save_weights_file(path)
    with h5py.File(path, "a") as file:  # as written before the field existed
        spec = json.loads(file.attrs["muzero_metadata"])
        del spec["residual_dynamics"]
        file.attrs["muzero_metadata"] = json.dumps(spec)
    network_for_game(plugin, config).load_weights_file(path)
    with pytest.raises(WeightsMismatchError, match="residual_dynamics: file False vs network True"):
        network_for_game(plugin, config.replace(residual_dynamics=True)).load_weights_file(path)
