import numpy as np
import pytest

from muzero.batching.inference import BatchedInference
from muzero.batching.selfplay import play_games
from muzero.network import network_for_game
from muzero.plugins import load_game
from muzero.replay import ReplayBuffer
from muzero.symmetry import symmetries_from_plugin
from muzero.training import Learner, averaging_momentum

TINY = dict(channels=8, num_blocks=1, hidden_size=32, mlp_layers=1, jit_compile=False,
            num_simulations=4, batch_size=32, num_unroll_steps=3, num_steps=100,
            learning_rate=1e-2, lr_decay=1.0)


def filled_replay(game_name: str, num_games: int, **changes):
    plugin = load_game(game_name)
    config = plugin.make_config().replace(**{**TINY, **changes})
    model = BatchedInference(network_for_game(plugin, config), jit_compile=False)
    report = play_games(plugin, config, model, num_games, num_envs=16, seed=0)
    game = plugin.make_game(config, np.random.default_rng(0))
    replay = ReplayBuffer(config, game.observation_shape, game.num_actions, game.num_players,
                          np.random.default_rng(0), symmetries_from_plugin(plugin, config))
    replay.add_games(report.games)
    return plugin, config, replay


@pytest.fixture(scope="module")
def tictactoe_replay():
    return filled_replay("tictactoe", 48)


def mean_losses(learner: Learner, batches) -> dict[str, float]:
    """Losses of fixed batches with the current weights, no update."""
    sums: dict[str, float] = {}
    for batch in batches:
        losses, _ = learner.evaluate_losses(batch)
        for name, value in losses.items():
            sums[name] = sums.get(name, 0.0) + value
    return {name: value / len(batches) for name, value in sums.items()}


def test_short_training_lowers_every_loss(tictactoe_replay):
    """Every head learns: on a fixed set of batches (4-simulation visit shares are noisy targets,
    so this measures fitting, not generalisation), every loss falls by a fifth or more."""
    plugin, config, replay = tictactoe_replay
    learner = Learner(network_for_game(plugin, config), config)
    batches = [replay.sample(config.batch_size) for _ in range(4)]
    before = mean_losses(learner, batches)
    for step in range(config.num_steps):
        batch = batches[step % len(batches)]
        result = learner.train_step(batch)
        replay.update_priorities(batch.indices, result.value_errors)
    after = mean_losses(learner, batches)
    for name in ("value", "reward", "policy", "to_play", "total"):
        assert after[name] < 0.8 * before[name], (name, before[name], after[name])
    assert learner.step == config.num_steps
    assert learner.tracing_count() == 1  # no retracing after the first step


def first_and_last_steps(plugin, config, replay, steps: int):
    """A fresh learner trained `steps` times on one batch: its first and last step results."""
    learner = Learner(network_for_game(plugin, config), config)
    batch = replay.sample(config.batch_size)
    first = learner.train_step(batch)
    for _ in range(steps):
        last = learner.train_step(batch)
    return first, last


def test_support_losses_train_and_errors_are_per_example(tictactoe_replay):
    plugin, config, replay = tictactoe_replay
    config = config.replace(scalar_support_size=5)
    first, last = first_and_last_steps(plugin, config, replay, 30)
    assert last.losses["value"] < first.losses["value"]
    assert first.value_errors.shape == (config.batch_size,)
    assert np.isfinite(first.value_errors).all()


def test_sgd_optimizer_and_state_round_trip(tictactoe_replay):
    plugin, config, replay = tictactoe_replay
    config = config.replace(optimizer="sgd")
    learner = Learner(network_for_game(plugin, config), config)
    batch = replay.sample(config.batch_size)
    learner.train_step(batch)
    state = learner.optimizer_state()
    assert sum(np.abs(array).sum() for array in state[1:]) > 0  # the step filled the momenta
    other = Learner(network_for_game(plugin, config), config)
    other.network.set_weights(learner.network.get_weights())
    other.set_optimizer_state(state)
    assert other.step == 1
    for restored, saved in zip(other.optimizer_state(), state):
        np.testing.assert_array_equal(restored, saved)
    learner.train_step(batch)  # the restored learner continues exactly where the first one is
    other.train_step(batch)
    for continued, resumed in zip(learner.network.get_weights(), other.network.get_weights()):
        np.testing.assert_allclose(resumed, continued, rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="optimizer state has"):
        Learner(network_for_game(plugin, config.replace(optimizer="adam")),
                config.replace(optimizer="adam")).set_optimizer_state(state)


def test_bandit_learner_with_one_player():
    plugin, config, replay = filled_replay("onearmbandit", 16)
    first, last = first_and_last_steps(plugin, config, replay, 20)
    assert last.losses["value"] < first.losses["value"]
    assert first.losses["to_play"] == pytest.approx(0.0, abs=1e-6)  # one player: nothing to learn


def test_averaging_momentum_spans_the_steps_asked():
    config = load_game("tictactoe").make_config()
    assert averaging_momentum(config.replace(agent_averaging=0)) == 0.0
    assert averaging_momentum(config.replace(agent_averaging=1)) == 0.0  # the last step only
    assert averaging_momentum(config.replace(agent_averaging=100)) == pytest.approx(0.99)


def test_agent_weights_are_the_moving_average_of_the_trained_weights(tictactoe_replay):
    """Against a NumPy moving average of the weights after each step (the first step's weights
    start it, as Keras's EMA does); the trained weights are left as they were, and the average
    survives an optimizer-state round trip exactly."""
    plugin, config, replay = tictactoe_replay
    config = config.replace(agent_averaging=4)  # momentum 0.75
    momentum = averaging_momentum(config)
    learner = Learner(network_for_game(plugin, config), config)
    assert learner.averaging
    trainable = [index for index, variable in enumerate(learner.network.weights)
                 if variable.trainable]
    reference = None
    for _ in range(6):
        learner.train_step(replay.sample(config.batch_size))
        weights = learner.network.get_weights()
        reference = ([w.astype(np.float64) for w in weights] if reference is None else
                     [momentum * r + (1 - momentum) * w for r, w in zip(reference, weights)])
    trained = learner.network.get_weights()
    agent = learner.agent_weights()
    for index, (average, expected, now) in enumerate(zip(agent, reference, trained)):
        if index in trainable:
            np.testing.assert_allclose(average, expected, rtol=1e-5, atol=1e-6)
        else:
            np.testing.assert_array_equal(average, now)
    assert any(not np.array_equal(a, t) for a, t in zip(agent, trained))
    for after, before in zip(learner.network.get_weights(), trained):
        np.testing.assert_array_equal(after, before)
    other = Learner(network_for_game(plugin, config), config)
    other.network.set_weights(trained)
    other.set_optimizer_state(learner.optimizer_state())
    for restored, saved in zip(other.agent_weights(), agent):
        np.testing.assert_array_equal(restored, saved)


def test_without_averaging_the_agent_is_the_trained_weights(tictactoe_replay):
    plugin, config, replay = tictactoe_replay
    learner = Learner(network_for_game(plugin, config), config)
    learner.train_step(replay.sample(config.batch_size))
    assert not learner.averaging
    for agent, trained in zip(learner.agent_weights(), learner.network.get_weights()):
        np.testing.assert_array_equal(agent, trained)
