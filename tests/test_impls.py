"""Every implementation against independent checks: finite differences, and the float64 oracle."""

import jax
import numpy as np
import pytest

from bench.agreement import check, compare, make_reference
from impls import ALL_TIMED, REGISTRY, Problem, make_inputs
from impls.network import loss

ALL = list(REGISTRY)
# torch_compile compiles for every new shape and dtype (tens of seconds each): it is checked on
# the finite-difference problem and the default case below, not across every shape.
QUICK = [name for name in ALL_TIMED if name != "torch_compile"]


def central_differences(params, x, y, step=1e-6):
    """d loss / d every parameter, by (L(p + h) - L(p - h)) / 2h on the float64 loss."""
    grads = []
    for W, b in params:
        pair = []
        for array in (W, b):
            grad = np.zeros_like(array)
            for index in np.ndindex(array.shape):
                saved = array[index]
                array[index] = saved + step
                up = loss(params, x, y, np)
                array[index] = saved - step
                down = loss(params, x, y, np)
                array[index] = saved
                grad[index] = (up - down) / (2 * step)
            pair.append(grad)
        grads.append(tuple(pair))
    return grads


@pytest.mark.parametrize("name", ALL)
def test_forward_loss_matches_definition(name, small_inputs):
    params, x, y = small_inputs
    value, _ = REGISTRY[name].compute(params, x, y, dtype="float64")
    assert value == pytest.approx(loss(params, x, y, np), rel=1e-13)


@pytest.mark.parametrize("name", ALL)
def test_backward_matches_finite_differences(name, small_inputs):
    params, x, y = small_inputs
    _, grads = REGISTRY[name].compute(params, x, y, dtype="float64")
    expected = central_differences(params, x, y)
    for layer, ((dW, db), (fW, fb)) in enumerate(zip(grads, expected), start=1):
        np.testing.assert_allclose(dW, fW, rtol=1e-6, atol=1e-9, err_msg=f"dW{layer}")
        np.testing.assert_allclose(db, fb, rtol=1e-6, atol=1e-9, err_msg=f"db{layer}")


CASES = {
    "default": Problem(),
    "batch-1": Problem(sizes=(6, 5, 3), batch=1),
    "width-1": Problem(sizes=(4, 1, 1, 2), batch=8),
    "no-hidden-layer": Problem(sizes=(7, 3), batch=9),
    "depth-8": Problem(sizes=(8,) + (16,) * 7 + (2,), batch=16, init="kaiming"),
    "xavier": Problem(sizes=(10, 20, 5), batch=12, init="xavier"),
}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", list(CASES))
def test_timed_implementations_agree_with_oracle(case, dtype):
    params, x, y = make_inputs(CASES[case])
    agreement = check(params, x, y, [REGISTRY[name] for name in QUICK], dtype=dtype)
    table = agreement.table
    assert table["resolved"].all(), table[~table["resolved"]]
    assert agreement.agrees, table
    # Not a near pass: these well-conditioned cases sit well inside their allowance.
    assert table["err_ratio"].max() < 0.5, table


def saturated_problem():
    return Problem(sizes=(16, 32, 32, 1), batch=32, scale=20.0, seed=0)


def test_saturated_case_has_large_preactivations():
    params, x, _ = make_inputs(saturated_problem())
    h, large = x, []
    for W, b in params[:-1]:
        z = h @ W + b
        large.append(np.mean(np.abs(z) >= 20))
        h = np.tanh(z)
    assert min(large) > 0.5, large  # most hidden units sit at |z| >= 20


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_saturated_case_still_agrees(dtype):
    params, x, y = make_inputs(saturated_problem())
    agreement = check(params, x, y, [REGISTRY[name] for name in QUICK], dtype=dtype)
    assert agreement.agrees, agreement.table
    # The saturated case's tensors are still resolved: the gate judged them, not the sanity bound.
    assert agreement.table["resolved"].all(), agreement.table


@pytest.mark.parametrize("name", ALL_TIMED)
def test_calling_twice_gives_identical_results(name, small_inputs):
    params, x, y = small_inputs
    prepared = REGISTRY[name].prepare(params, x, y, dtype="float32")
    first, second = (prepared.to_numpy(prepared.run()) for _ in range(2))
    assert first[0] == second[0]
    for (a, b), (c, d) in zip(first[1], second[1]):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)


@pytest.mark.parametrize("name", QUICK)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_results_have_requested_dtype_and_structure(name, dtype, small_inputs):
    params, x, y = small_inputs
    _, grads = REGISTRY[name].compute(params, x, y, dtype=dtype)
    assert [(dW.shape, db.shape) for dW, db in grads] == [(W.shape, b.shape) for W, b in params]
    assert all(dW.dtype == dtype and db.dtype == dtype for dW, db in grads)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_torch_compile_agrees_on_the_default_case(dtype):
    params, x, y = make_inputs(Problem())
    agreement = check(params, x, y, [REGISTRY["torch_compile"]], dtype=dtype)
    assert agreement.agrees, agreement.table
    assert agreement.table["err_ratio"].max() < 0.5


def _raise(*args, **kwargs):
    raise AssertionError("autodiff was called")


@pytest.fixture
def no_autodiff(monkeypatch):
    for name in ("grad", "value_and_grad", "vjp", "jvp", "linearize"):
        monkeypatch.setattr(jax, name, _raise)


def test_jax_manual_uses_no_autodiff(no_autodiff, small_inputs):
    from impls import jax_manual

    params, x, y = small_inputs
    fresh = jax.jit(jax_manual.forward_backward)  # a new trace, made while autodiff raises
    loss_value, grads, _ = fresh(*jax.tree.map(np.float32, (params, x, y)))
    reference = make_reference(params, x, y, "float32")
    assert compare((loss_value, grads), reference)["agrees"].all()


def test_no_autodiff_fixture_bites(no_autodiff):
    import jax.numpy as jnp

    with pytest.raises(AssertionError, match="autodiff was called"):
        jax.grad(lambda w: jnp.sum(w ** 2))(jnp.ones(3))


def test_float64_leaves_64_bit_mode_off(small_inputs):
    params, x, y = small_inputs
    _, grads = REGISTRY["jax_manual"].compute(params, x, y, dtype="float64")
    assert grads[0][0].dtype == np.float64
    assert not jax.config.jax_enable_x64


@pytest.mark.parametrize("name", QUICK + ["numpy_reference"])
def test_steps_per_call_sum_over_the_batches(name):
    # steps=3: one call, three batches; the result is the sum of three single-batch results.
    from bench.cases import stepped_inputs

    params, xs, ys = stepped_inputs(Problem(sizes=(5, 7, 3), batch=4), steps=3)
    loss, grads = REGISTRY[name].compute(params, xs, ys, dtype="float64", steps=3)
    singles = [REGISTRY["numpy_reference"].compute(params, x, y, dtype="float64") for x, y in zip(xs, ys)]
    assert loss == pytest.approx(sum(s[0] for s in singles), rel=1e-12)
    for layer, (dW, db) in enumerate(grads):
        np.testing.assert_allclose(dW, sum(s[1][layer][0] for s in singles), rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(db, sum(s[1][layer][1] for s in singles), rtol=1e-10, atol=1e-14)


def test_steps_need_a_leading_batch_axis(small_inputs):
    params, x, y = small_inputs
    with pytest.raises(ValueError, match=r"steps=2 needs x of shape \(steps, B, d0\)"):
        REGISTRY["jax_manual"].prepare(params, x, y, steps=2)
