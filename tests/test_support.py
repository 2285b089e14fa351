import numpy as np
import pytest

from muzero.support import from_distribution, from_logits, scale, to_two_hot, unscale


def test_scale_then_unscale_round_trips():
    x = np.concatenate([np.linspace(-1e4, 1e4, 20001), np.linspace(-2, 2, 4001)])
    np.testing.assert_allclose(unscale(scale(x)).numpy(), x, rtol=1e-5, atol=1e-5)
    x32 = np.linspace(-50, 50, 1001).astype(np.float32)
    np.testing.assert_allclose(unscale(scale(x32)).numpy(), x32, rtol=1e-5, atol=1e-5)


def test_scale_has_the_papers_shape():
    assert scale(np.array(0.0)).numpy() == 0.0
    assert scale(np.array(3.0)).numpy() == pytest.approx(1.0 + 0.003)
    assert scale(np.array(-3.0)).numpy() == pytest.approx(-1.003)


@pytest.mark.parametrize("support_size", [1, 5, 20])
def test_scalar_to_two_hot_to_scalar_round_trips(support_size):
    limit = float(unscale(np.array(float(support_size))).numpy())
    x = np.linspace(-limit, limit, 2001)
    two_hot = to_two_hot(x, support_size).numpy()
    assert two_hot.shape == (2001, 2 * support_size + 1)
    np.testing.assert_allclose(two_hot.sum(axis=-1), 1.0, atol=1e-12)
    assert ((two_hot > 0).sum(axis=-1) <= 2).all()
    np.testing.assert_allclose(from_distribution(two_hot, support_size).numpy(), x, atol=1e-5)


def test_two_hot_clips_beyond_the_support():
    two_hot = to_two_hot(np.array([1e6, -1e6]), 3).numpy()
    assert two_hot[0, -1] == 1.0 and two_hot[1, 0] == 1.0


def test_logits_give_the_expected_value():
    logits = np.log(np.array([[0.25, 0.5, 0.25], [0.0, 0.0, 1.0]]) + 1e-30)
    np.testing.assert_allclose(from_logits(logits, 1).numpy(),
                               [0.0, unscale(np.array(1.0)).numpy()], atol=1e-6)
