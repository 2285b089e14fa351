"""Self-play's visit-count temperature over a run (`temperature_schedule`)."""

import pytest

from muzero import loops
from muzero.config import Config
from muzero.loops import Actor, LocalWeights, scheduled_temperature

CONFIG = Config(game="tictactoe", num_steps=1000, temperature=2.0)


@pytest.mark.parametrize("step, expected", [(0, 2.0), (499, 2.0), (500, 1.0), (749, 1.0),
                                            (750, 0.5), (1000, 0.5), (5000, 0.5)])
def test_the_papers_schedule_halves_the_temperature_at_half_and_three_quarters(step, expected):
    assert scheduled_temperature(CONFIG.replace(temperature_schedule="paper"),
                                 step) == expected


def test_a_constant_schedule_keeps_the_configured_temperature():
    assert scheduled_temperature(CONFIG, 999) == 2.0


def test_self_play_rounds_use_the_temperature_of_the_weights_step(monkeypatch):
    seen = []

    def fake_play_games(plugin, config, model, num_games, **_):
        seen.append(config.temperature)
        raise StopIteration  # nothing to play: the config is what this test reads

    monkeypatch.setattr(loops, "play_games", fake_play_games)

    class FakeNetwork:
        def set_weights(self, arrays):
            pass

    class FakeInference:
        network = FakeNetwork()

    actor = Actor(None, CONFIG.replace(temperature_schedule="paper"), FakeInference())
    weights = LocalWeights()
    for step in (10, 600, 900):
        weights.publish([], step)
        with pytest.raises(StopIteration):
            actor.round(None, weights, 1, seed=(0, 0))
    assert seen == [2.0, 1.0, 0.5]
