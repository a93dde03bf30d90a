"""Agreement: how far each implementation's loss and gradients are from the float64 oracle.

Per tensor (the loss, then dW_l and db_l for each layer) against the oracle ``r``:

* ``max_abs_err``   max |a - r|
* ``norm_rel_err``  ||a - r|| / ||r||
* ``one_minus_cos`` 1 - cos(a, r)
* ``exact``         a equals r rounded to a's dtype, bit for bit
* ``approx``        ``allclose(a, r)`` with torch's default rtol 1e-5, atol 1e-8
* ``err_ratio``     ||a - r|| / allowed, the gate's measure: the tensor agrees when it is <= 1

The gate. Elementwise relative error cannot be a gate: a saturated tanh makes many gradients
near zero. Plain ||a - r|| / ||r|| cannot be one either: where a unit is saturated its local
gradient 1 - t**2 is a few units of roundoff, which two correct programs compute differently,
and in a deep network with large weights a change of one unit of roundoff moves the whole
gradient. So each tensor is allowed the error that its own computation permits:

    allowed = TOLERANCE[dtype] * ||s||           rounding in the sum that produces the tensor
            + CONDITIONING_FACTOR * ||r' - r||   how far the answer moves under rounding

``s`` holds the magnitudes the tensor is summed from (:func:`impls.numpy_reference.error_scale`:
where the terms cancel, the error is relative to them, not to the small result). ``r'`` is the
oracle run with every input and every tanh output perturbed at random by one unit of the
dtype's roundoff (TANH_ULPS units for tanh, whose libraries differ most near saturation): the
larger of two such runs. Both come from the oracle alone, never from the implementation judged.
A tensor whose allowance exceeds a tenth of its norm is marked *unresolved*: rounding decides
so much of it that the gate, though still applied, cannot tell a wrong gradient from a right one.

Tolerances, measured with ``python -m bench tolerances`` (a sweep over depth 1 to 9, width 1 to
256, batch 1 to 256, three inits, weight scales 1 to 100, the three timed implementations):
the smallest tolerance that every tensor of the sweep meets, times 10, rounded up to a power
of ten. The figures are in the README.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from impls import numpy_reference

TOLERANCE = {"float32": 1e-7, "float64": 1e-13}
# XLA's float32 tanh returns exactly +-1 beyond |z| of about 7.9, where 1 - t**2 is still about
# nine units of roundoff: near saturation tanh is known to within about 16 units.
TANH_ULPS = 16
# A whole forward and backward pass rounds many times where the perturbation rounds the inputs
# and tanh once; the tolerance sweep needs a factor of a few, and 10 leaves room.
CONDITIONING_FACTOR = 10
# A tensor whose allowance exceeds this share of its norm is reported as unresolved.
_RESOLVED_SHARE = 0.1
APPROX_RTOL, APPROX_ATOL = 1e-5, 1e-8  # torch.allclose's defaults


def unit_roundoff(dtype: str) -> float:
    return float(np.finfo(dtype).eps) / 2


def tensor_names(n_layers: int) -> list[str]:
    return ["loss"] + [f"d{kind}{layer}" for layer in range(1, n_layers + 1) for kind in ("W", "b")]


def flatten(loss, grads) -> list[np.ndarray]:
    """``[loss, dW1, db1, dW2, ...]``, the order of :func:`tensor_names`."""
    return [np.asarray(loss)] + [np.asarray(t) for pair in grads for t in pair]


@dataclass(frozen=True)
class Reference:
    """The oracle's answer for one problem, and the error each tensor is allowed in ``dtype``.

    Lists run in the order of :func:`tensor_names`: ``values`` are float64; ``scales`` (||s||)
    and ``moved`` (||r' - r||) are the two parts of the gate's allowance (module docstring).
    """

    dtype: str
    names: list[str]
    values: list[np.ndarray]
    scales: list[float]
    moved: list[float]

    @property
    def allowed(self) -> list[float]:
        return [TOLERANCE[self.dtype] * s + CONDITIONING_FACTOR * m
                for s, m in zip(self.scales, self.moved)]

    @property
    def resolved(self) -> list[bool]:
        return [bool(a <= _RESOLVED_SHARE * np.linalg.norm(r))
                for a, r in zip(self.allowed, self.values)]


def make_reference(params, x, y, dtype: str, seed: int = 0) -> Reference:
    """The oracle on ``(params, x, y)`` and each tensor's allowed error in ``dtype``."""
    u = unit_roundoff(dtype)
    values = flatten(*numpy_reference.loss_and_grads(params, x, y))
    scales = [float(np.linalg.norm(s)) for s in flatten(*numpy_reference.error_scale(params, x, y))]

    moved = np.zeros(len(values))
    for stream in range(2):
        rng = np.random.default_rng([seed, stream])

        def perturb(a, ulps=1, rng=rng):
            return a * (1 + ulps * u * rng.choice([-1.0, 1.0], size=np.shape(a)))

        answer = flatten(*numpy_reference.loss_and_grads(
            [(perturb(W), perturb(b)) for W, b in params], perturb(x), perturb(y),
            tanh=lambda z: np.clip(perturb(np.tanh(z), TANH_ULPS), -1.0, 1.0)))
        moved = np.maximum(moved, [np.linalg.norm(a - r) for a, r in zip(answer, values)])
    return Reference(dtype, tensor_names(len(params)), values, scales, [float(m) for m in moved])


def _norm_ratio(numerator: float, denominator: float) -> float:
    if denominator == 0:
        return 0.0 if numerator == 0 else float("inf")
    return numerator / denominator


def _one_minus_cos(a: np.ndarray, r: np.ndarray) -> float:
    na, nr = np.linalg.norm(a), np.linalg.norm(r)
    if na == 0 or nr == 0:
        return 0.0 if na == nr else 1.0
    return float(1 - np.dot(a.ravel(), r.ravel()) / (na * nr))


def compare(result, reference: Reference) -> pd.DataFrame:
    """One row per tensor: the errors of ``result = (loss, grads)`` against ``reference``."""
    with np.errstate(over="ignore", invalid="ignore"):  # non-finite results are reported, not warned
        return _compare(result, reference)


def _compare(result, reference: Reference) -> pd.DataFrame:
    rows = []
    for name, a, r, allowed, resolved in zip(reference.names, flatten(*result), reference.values,
                                             reference.allowed, reference.resolved):
        if a.shape != r.shape:
            raise ValueError(f"{name}: shape {a.shape} where the oracle has {r.shape}")
        finite = bool(np.all(np.isfinite(a)))
        a64 = a.astype(np.float64)
        err = float(np.linalg.norm(a64 - r)) if finite else float("inf")
        ratio = _norm_ratio(err, allowed)
        rows.append({
            "tensor": name,
            "max_abs_err": float(np.max(np.abs(a64 - r))) if finite else float("inf"),
            "norm_rel_err": _norm_ratio(err, float(np.linalg.norm(r))),
            "one_minus_cos": _one_minus_cos(a64, r) if finite else float("inf"),
            "err_ratio": ratio,
            "exact": bool(np.array_equal(a, r.astype(a.dtype))),
            "approx": finite and bool(np.allclose(a64, r, rtol=APPROX_RTOL, atol=APPROX_ATOL)),
            "resolved": bool(resolved),
            "agrees": finite and ratio <= 1.0,
            "note": "" if finite else f"non-finite values ({int(np.sum(~np.isfinite(a)))} of {a.size})",
        })
    return pd.DataFrame(rows)


def computation_order(names: list[str]) -> list[str]:
    """The tensors in the order a pass computes them: the loss, then the last layer's
    gradients down to the first's."""
    layers = sorted({int(name[2:]) for name in names if name != "loss"}, reverse=True)
    return ["loss"] + [f"d{kind}{layer}" for layer in layers for kind in ("W", "b")]


def nonfinite_summary(table: pd.DataFrame) -> str:
    """Where one implementation's results stop being finite numbers, or "" if they never do."""
    bad = set(table.loc[table["note"].str.startswith("non-finite"), "tensor"])
    if not bad:
        return ""
    ordered = [name for name in computation_order(list(table["tensor"])) if name in bad]
    first = ordered[0]
    where = "the loss" if first == "loss" else f"{first} (layer {first[2:]})"
    rest = f"; also {', '.join(ordered[1:])}" if len(ordered) > 1 else ""
    return f"non-finite results, first in {where}{rest}"


def input_overflow(params, x, y, dtype: str) -> str:
    """Which input cannot be represented in ``dtype`` (it becomes inf), or ""."""
    limit = float(np.finfo(dtype).max)
    named = [(f"W{l}", W) for l, (W, _) in enumerate(params, 1)] + \
            [(f"b{l}", b) for l, (_, b) in enumerate(params, 1)] + [("x", x), ("y", y)]
    for name, array in named:
        largest = float(np.max(np.abs(array))) if np.size(array) else 0.0
        if largest > limit:
            return f"{name} overflows {dtype}: max |{name}| = {largest:.3g} > {limit:.3g}"
    return ""


def compare_pair(a, b, names: list[str]) -> pd.DataFrame:
    """One row per tensor: how two implementations' results differ from each other."""
    rows = []
    for name, ta, tb in zip(names, flatten(*a), flatten(*b)):
        with np.errstate(invalid="ignore"):
            diff = ta.astype(np.float64) - tb.astype(np.float64)
        rows.append({"tensor": name,
                     "max_abs_diff": float(np.max(np.abs(diff))),
                     "norm_rel_diff": _norm_ratio(float(np.linalg.norm(diff)),
                                                  float(np.linalg.norm(tb.astype(np.float64)))),
                     "exact": bool(ta.dtype == tb.dtype and np.array_equal(ta, tb))})
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class Agreement:
    """Every implementation against the oracle (``table``) and against each other (``pairwise``)."""

    dtype: str
    table: pd.DataFrame  # one row per implementation x tensor, the columns of :func:`compare`
    pairwise: pd.DataFrame  # one row per pair x tensor, the columns of :func:`compare_pair`

    @property
    def agrees(self) -> bool:
        return bool(self.table["agrees"].all())

    def verdicts(self) -> pd.Series:
        """Per implementation: True when every one of its tensors agrees."""
        return self.table.groupby("impl", sort=False)["agrees"].all()


def check(params, x, y, impls, dtype: str = "float32", device: str = "cpu") -> Agreement:
    """Compute every implementation in ``impls`` (registry entries) and compare."""
    reference = make_reference(params, x, y, dtype)
    results = {impl.name: impl.compute(params, x, y, dtype=dtype, device=device) for impl in impls}
    table = pd.concat([compare(result, reference).assign(impl=name)
                       for name, result in results.items()], ignore_index=True)
    names = list(results)
    pairs = [compare_pair(results[a], results[b], reference.names).assign(pair=f"{a} vs {b}")
             for i, a in enumerate(names) for b in names[i + 1:]]
    pairwise = pd.concat(pairs, ignore_index=True) if pairs else pd.DataFrame()
    return Agreement(dtype, table, pairwise)


# The sweep behind TOLERANCE: saturated and unsaturated, shallow and deep, narrow and wide.
TOLERANCE_SWEEP = {
    "sizes": [(5, 3), (1, 1, 1), (4, 1, 4), (16, 32, 32, 1), (8, 64, 64, 64, 64, 4),
              (32,) * 9 + (1,), (64, 256, 256, 10)],
    "batch": [1, 32, 256],
    "init": ["normal", "xavier", "kaiming"],
    "scale": [1.0, 5.0, 20.0, 100.0],
}


def measure_tolerances(impls, progress=None) -> pd.DataFrame:
    """Per dtype, over :data:`TOLERANCE_SWEEP`: the tolerance every tensor needs, and the margin.

    A tensor needs ``(||a - r|| - CONDITIONING_FACTOR * moved) / ||s||``: what is left of its
    error once the conditioning allowance is taken off, relative to its scale. The summary also
    gives the largest ``||a - r|| / moved``: the conditioning factor the sweep would need alone.
    """
    from itertools import product

    from impls.network import Problem, make_inputs

    rows = []
    cases = list(product(*TOLERANCE_SWEEP.values()))
    for index, (sizes, batch, init, scale) in enumerate(cases, start=1):
        if progress:
            progress(f"[{index}/{len(cases)}] sizes={sizes} batch={batch} init={init} scale={scale}")
        params, x, y = make_inputs(Problem(sizes=sizes, batch=batch, init=init, scale=scale))
        for dtype in TOLERANCE:
            reference = make_reference(params, x, y, dtype)
            for impl in impls:
                result = flatten(*impl.compute(params, x, y, dtype=dtype))
                for a, r, s, m, ok in zip(result, reference.values, reference.scales,
                                          reference.moved, reference.resolved):
                    err = float(np.linalg.norm(a.astype(np.float64) - r))
                    rows.append({"dtype": dtype, "resolved": ok,
                                 "needed": _norm_ratio(max(err - CONDITIONING_FACTOR * m, 0.0), s),
                                 "factor": _norm_ratio(err, m)})
    table = pd.DataFrame(rows)
    summary = table.groupby("dtype").agg(tensors=("needed", "size"),
                                         unresolved=("resolved", lambda ok: int((~ok).sum())),
                                         needed_tolerance=("needed", "max"),
                                         largest_err_over_moved=("factor", "max"))
    summary["tolerance"] = pd.Series(TOLERANCE)
    summary["margin"] = summary["tolerance"] / summary["needed_tolerance"]
    return summary
