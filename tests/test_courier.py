"""The courier's journey: the route's messages, the diagnostics' properties, the trace."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bench.cli import main
from bench.diagnose import DiagnoseConfig, layer_table, write
from bench.trace import trace, trace_inputs
from impls import Problem, make_inputs
from impls.jax_manual import compute_route, forward_backward


def rest_of_network(params, start, xp=jnp):
    """The loss as a function of layer ``start``'s activations t (start counts from 1)."""
    def loss_from(t, y):
        for W, b in params[start:-1]:
            t = xp.tanh(t @ W + b)
        W, b = params[-1]
        return xp.mean((t @ W + b - y) ** 2)
    return loss_from


@pytest.mark.parametrize("problem", [
    Problem(sizes=(4, 5, 6, 3), batch=7, seed=1),
    Problem(sizes=(3,) + (4,) * 6 + (2,), batch=5, init="kaiming", seed=2),
], ids=["two-hidden", "six-hidden-kaiming"])
def test_messages_equal_jax_grad_of_the_loss(problem):
    params, x, y = make_inputs(problem)
    with jax.enable_x64(True):
        _, _, route = jax.jit(forward_backward)(params, x, y)
        for l, (z, t) in enumerate(zip(route["z"], route["t"]), start=1):
            from_t = rest_of_network(params, l)
            d_t = jax.grad(from_t)(t, y)
            d_z = jax.grad(lambda z_, y_, f=from_t: f(jnp.tanh(z_), y_))(z, y)
            np.testing.assert_allclose(route["d_t"][l - 1], d_t, rtol=1e-12, atol=1e-15)
            np.testing.assert_allclose(route["d_z"][l - 1], d_z, rtol=1e-12, atol=1e-15)
            np.testing.assert_allclose(route["local"][l - 1], 1 - np.tanh(np.asarray(z)) ** 2,
                                       rtol=1e-12, atol=1e-15)


def test_route_gradients_equal_the_timed_path():
    params, x, y = make_inputs(Problem())
    from impls import REGISTRY

    _, grads, _ = compute_route(params, x, y, dtype="float32")
    _, timed = REGISTRY["jax_manual"].compute(params, x, y, dtype="float32")
    for (a, b), (c, d) in zip(grads, timed):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)


SMALL = dict(sizes=(16, 32, 32, 32, 1), batch=64)


def test_huge_scale_saturates_and_kills_the_message():
    config = DiagnoseConfig(**SMALL, schemes=("oversized",), oversize=100.0)
    rows = layer_table(config, "oversized")
    assert (rows["saturated"] > 0.95).all(), rows
    assert rows["surviving"].iloc[0] < 1e-3, rows  # layer 1: the end of the walk
    assert rows["dead_units"].sum() > 0
    # surviving multiplies the gates in the order the courier meets them: last layer first.
    gates = rows["through_tanh"].to_numpy()
    assert rows["surviving"].iloc[0] == pytest.approx(np.prod(gates))
    assert rows["surviving"].iloc[-1] == pytest.approx(gates[-1])


def test_zero_weights_saturate_nothing():
    # scale 0: every weight is zero, z is the small bias, tanh is far from +-1.
    config = DiagnoseConfig(**SMALL, schemes=("oversized",), oversize=0.0)
    rows = layer_table(config, "oversized")
    assert (rows["saturated"] == 0).all() and (rows["dead_units"] == 0).all()
    assert np.allclose(rows["mean_local_grad"], 1, atol=0.05)
    # and zero weights carry nothing back: d_t = d_z @ W.T = 0 at every layer
    assert (rows["message_norm"] == 0).all()


# Measured with python -m bench diagnose (default network: 32,64 x8,1, batch 256, float32) on
# seeds 0, 1 and 2 before writing the band down: kaiming's message_ratio stayed between 0.87 and
# 1.7 on every layer; normal (std 1) grew from 7 to 1600 on the way to layer 1.
KAIMING_BAND = (0.5, 2.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kaiming_keeps_the_message_in_a_band_where_normal_does_not(seed):
    config = DiagnoseConfig(seed=seed, schemes=("normal", "kaiming"))
    kaiming = layer_table(config, "kaiming")
    normal = layer_table(config, "normal")
    low, high = KAIMING_BAND
    assert kaiming["message_ratio"].between(low, high).all(), kaiming["message_ratio"]
    assert not normal["message_ratio"].between(low, high).any(), normal["message_ratio"]
    # and the gates let far more through under kaiming
    assert kaiming["surviving"].iloc[0] > 100 * normal["surviving"].iloc[0]


def test_diagnose_writes_its_files(tmp_path):
    config = DiagnoseConfig(**SMALL, schemes=("normal", "kaiming"))
    layers, agreement = write(config, tmp_path / "diag")
    names = sorted(p.name for p in (tmp_path / "diag").iterdir())
    assert names == ["activations.png", "agreement_by_init.csv", "courier.png", "diagnostics.csv",
                     "diagnostics.md"]
    assert list(layers["init"].unique()) == ["normal", "kaiming"] and len(layers) == 2 * 3
    assert agreement["agrees"].all()
    assert not list(tmp_path.glob(".tmp-*"))


def test_trace_by_hand_at_z_20():
    # x = 1, W1 = 20, b1 = 0: z = 20, t = tanh(20) = 1 in float32; out = t * 1 = 1, y = 0.
    table = trace((1, 1, 1), 1, 20.0, "float32").set_index("quantity")
    value = {q: float(np.ravel(table.loc[q, "manual"])[0]) for q in table.index}
    assert value["z1"] == 20.0 and value["t1"] == 1.0 and value["loss"] == 1.0
    assert value["d_out"] == 2.0 and value["d_t1"] == 2.0
    assert value["local1"] == 0.0 and value["d_z1"] == 0.0 and value["dW1"] == 0.0
    assert value["dW2"] == 2.0  # the last layer still learns: t1 * d_out


@pytest.mark.parametrize("z", [1.0, 20.0, -3.0])
@pytest.mark.parametrize("sizes, batch", [((1, 1, 1), 1), ((2, 2, 2, 1), 2)], ids=["1-1-1", "2-2-2-1"])
def test_trace_values_equal_autograd(z, sizes, batch):
    table = trace(sizes, batch, z, "float32")
    # Near saturation one unit of roundoff in t moves 1 - t^2 by u / (1 - |t|) relative: at
    # z = -3 that is about 6e-8 / 0.005 = 1.2e-5, the largest difference two correct float32
    # programs show here (JAX computes (1 - t)(1 + t), torch 1 - t * t, from tanhs an ulp apart).
    for row in table.itertuples():
        np.testing.assert_allclose(row.manual, row.autograd, rtol=5e-5, atol=1e-7,
                                   err_msg=row.quantity)
    assert table.set_index("quantity").loc["z1", "match"] == "exact"  # 1 * z/d0 * d0: no rounding


def test_trace_network_is_the_documented_one():
    params, x, y = trace_inputs((2, 3, 1), 2, 5.0)
    assert np.all(params[0][0] == 2.5) and np.all(params[1][0] == 1 / 3)
    assert np.all(x == 1) and np.all(y == 0)


def test_trace_command_shows_the_dead_tanh(capsys):
    assert main(["trace"]) == 0
    out = capsys.readouterr().out
    assert "## z = 1 (float32)" in out and "## z = 20 (float32)" in out
    assert "Every local gradient is non-zero" in out
    assert "its local gradient is exactly 0" in out and "A dead tanh." in out


@pytest.mark.parametrize("argv, fragment", [
    (["diagnose", "--threshold", "1.5"], "threshold 1.5 must lie strictly between 0 and 1"),
    (["diagnose", "--threshold", "0"], "threshold 0.0 must lie strictly between 0 and 1"),
    (["diagnose", "--inits", "normal,he"], "unknown init 'he'"),
    (["diagnose", "--sizes", "16,1"], "has no hidden layer"),
    (["trace", "--sizes", "4,1"], "has no hidden layer"),
    (["trace", "--sizes", "8,8,1"], "too large to trace"),
    (["trace", "--z", "1,abc"], "'abc' is not a finite number"),
], ids=["threshold-above-1", "threshold-0", "unknown-init", "diagnose-no-hidden", "trace-no-hidden",
        "trace-too-large", "trace-bad-z"])
def test_bad_input(usage_error, tmp_path, argv, fragment):
    usage_error(argv + (["--output", str(tmp_path / "d")] if argv[0] == "diagnose" else []), fragment)
    assert not (tmp_path / "d").exists()
