"""The agreement metrics on numbers worked out by hand, and the gate failing on wrong backwards."""

import math

import numpy as np
import pytest
from wrong_impls import WRONG

from bench.agreement import Reference, check, compare, compare_pair, make_reference, tensor_names
from impls import REGISTRY, Problem, make_inputs


def one_tensor_reference(value, scale, moved=0.0, dtype="float64"):
    return Reference(dtype, ["loss"], [np.asarray(value, dtype=np.float64)], [scale], [moved])


def test_metrics_by_hand():
    # r = (3, 4), ||r|| = 5; a = (3, 5): error (0, 1). Allowed: 1e-13 * 6e12 + 10 * 0.02 = 0.8.
    reference = Reference("float64", ["loss", "dW1", "db1"],
                          [np.array(0.0), np.array([[3.0, 4.0]]), np.array([1.0])],
                          scales=[1.0, 6e12, 1.0], moved=[0.0, 0.02, 0.0])
    assert reference.allowed[1] == pytest.approx(0.8)
    result = (0.0, [(np.array([[3.0, 5.0]]), np.array([1.0]))])
    row = compare(result, reference).set_index("tensor").loc["dW1"]
    assert row["max_abs_err"] == 1.0
    assert row["norm_rel_err"] == pytest.approx(1 / 5)
    assert row["one_minus_cos"] == pytest.approx(1 - 29 / (5 * math.sqrt(34)))
    assert row["err_ratio"] == pytest.approx(1 / 0.8)
    assert not row["exact"] and not row["approx"] and not row["agrees"]
    assert not row["resolved"]  # 0.8 allowed is more than a tenth of ||r|| = 5


def test_exact_and_approx_verdicts():
    reference = one_tensor_reference(1.0, 1.0)
    assert compare((np.float64(1.0), []), reference).loc[0, "exact"]
    near = compare((np.float64(1.0 + 1e-9), []), reference).loc[0]
    assert not near["exact"] and near["approx"]
    assert not near["agrees"]  # error 1e-9 is over the float64 allowance 1e-13 * 1
    assert compare((np.float64(1.0 + 5e-14), []), reference).loc[0, "agrees"]


def test_non_finite_result_never_agrees():
    row = compare((np.float64("nan"), []), one_tensor_reference(1.0, 1.0, moved=1e9)).loc[0]
    assert not row["agrees"] and row["note"] == "non-finite values (1 of 1)"


def test_pairwise_by_hand():
    a = (1.0, [(np.array([[1.0, 2.0]], dtype=np.float32), np.array([0.0], dtype=np.float32))])
    b = (1.0, [(np.array([[1.0, 2.5]], dtype=np.float32), np.array([0.0], dtype=np.float32))])
    table = compare_pair(a, b, tensor_names(1)).set_index("tensor")
    assert table.loc["loss", "exact"] and table.loc["db1", "exact"]
    assert table.loc["dW1", "max_abs_diff"] == 0.5
    assert table.loc["dW1", "norm_rel_diff"] == pytest.approx(0.5 / math.sqrt(1 + 2.5 ** 2))


@pytest.mark.parametrize("wrong", list(WRONG))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("problem", [Problem(), Problem(sizes=(8, 64, 64, 4), batch=256, init="kaiming")],
                         ids=["default", "wide-batch-256"])
def test_gate_fails_wrong_backward(wrong, dtype, problem):
    params, x, y = make_inputs(problem)
    agreement = check(params, x, y, [REGISTRY["jax_manual"], WRONG[wrong]], dtype=dtype)
    verdicts = agreement.verdicts()
    assert verdicts["jax_manual"] and not verdicts[wrong]
    failing = agreement.table.query("impl == @wrong and not agrees")
    assert (failing["err_ratio"] > 10).all()  # not a near miss
    assert "db1" in set(failing["tensor"])


def test_fully_saturated_first_layer_is_unresolved_in_float32():
    # One hidden unit, one example, z = 100 * 1 + 0: tanh(100) is exactly 1 in float32 and in
    # float64, so d loss / dW1 is a few units of roundoff that no program computes reliably.
    params = [(np.array([[100.0]]), np.array([0.0])), (np.array([[2.0]]), np.array([0.5]))]
    x, y = np.array([[1.0]]), np.array([[0.0]])
    resolved = dict(zip(*(lambda r: (r.names, r.resolved))(make_reference(params, x, y, "float32"))))
    assert resolved == {"loss": True, "dW1": False, "db1": False, "dW2": True, "db2": True}
