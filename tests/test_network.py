"""The network definition and its inputs, against numbers worked out by hand."""

import math

import numpy as np
import pytest

from impls.network import Problem, forward, loss, make_data, make_params, weight_std


def test_forward_and_loss_by_hand():
    # sizes (1, 1, 1): out = tanh(x * w1 + b1) * w2 + b2, worked out on paper.
    params = [(np.array([[2.0]]), np.array([0.5])), (np.array([[3.0]]), np.array([-1.0]))]
    x, y = np.array([[1.0], [-1.0]]), np.array([[0.0], [1.0]])
    expected_out = np.array([[math.tanh(2.5) * 3 - 1], [math.tanh(-1.5) * 3 - 1]])
    np.testing.assert_allclose(forward(params, x, np), expected_out, rtol=1e-15)
    expected_loss = ((expected_out[0, 0] - 0) ** 2 + (expected_out[1, 0] - 1) ** 2) / 2
    assert loss(params, x, y, np) == pytest.approx(expected_loss, rel=1e-15)


@pytest.mark.parametrize("init, fan_in, fan_out, tanh_next, expected", [
    ("normal", 16, 32, True, 1.0),
    ("xavier", 16, 32, True, math.sqrt(2 / 48)),
    ("kaiming", 16, 32, True, (5 / 3) / 4),
    ("kaiming", 16, 1, False, 1 / 4),
], ids=["normal", "xavier", "kaiming-hidden", "kaiming-output"])
def test_weight_std(init, fan_in, fan_out, tanh_next, expected):
    assert weight_std(init, fan_in, fan_out, 1.0, tanh_next) == pytest.approx(expected)


def test_params_shapes_scale_and_nonzero_biases():
    problem = Problem(sizes=(3, 5, 2), batch=4, scale=20.0, seed=3)
    params = make_params(problem)
    assert [(W.shape, b.shape) for W, b in params] == [((3, 5), (5,)), ((5, 2), (2,))]
    assert all(np.all(b != 0) for _, b in params)
    unscaled = make_params(Problem(sizes=(3, 5, 2), batch=4, seed=3))
    for (W, _), (W1, _) in zip(params, unscaled):
        np.testing.assert_allclose(W, 20.0 * W1)
    assert problem.n_params == 3 * 5 + 5 + 5 * 2 + 2


def test_data_does_not_depend_on_init_and_is_reproducible():
    a = make_data(Problem(init="normal", seed=7))
    b = make_data(Problem(init="kaiming", seed=7))
    c = make_data(Problem(init="normal", seed=8))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


@pytest.mark.parametrize("kwargs, message", [
    ({"sizes": (4,)}, "need at least two"),
    ({"sizes": (4, 0)}, "size 0"),
    ({"sizes": (4, 2.5)}, "size 2.5"),
    ({"batch": 0}, "batch 0"),
    ({"init": "he"}, "unknown init 'he'"),
    ({"scale": -1.0}, "scale -1.0"),
    ({"seed": -2}, "seed -2"),
], ids=["one-size", "zero-width", "float-width", "zero-batch", "unknown-init", "negative-scale",
        "negative-seed"])
def test_problem_rejects_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Problem(**kwargs)
