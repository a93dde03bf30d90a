"""A walk through the chain rule on a tiny network: the hand-written pass beside PyTorch's autograd.

    python -m bench trace                  # one hidden unit, z = 1 (alive) then z = 20 (dead)
    python -m bench trace --sizes 2,3,1 --z 5

The network is made to be worked out on paper: x = 1 everywhere, y = 0, the first layer's
weights all z / d0 (so every first-layer unit has pre-activation z), every later layer's
weights 1 / d_in, all biases 0. Every quantity of the forward pass and every step of the
backward pass is printed in order, the value from ``jax_manual`` beside the value PyTorch's
autograd holds for the same tensor (``.grad`` of the retained intermediate; for the local
gradient, torch's own tanh backward).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd

MAX_VALUES = 8  # a trace is for tiny networks: at most this many values per quantity


@dataclass(frozen=True)
class TraceConfig:
    sizes: tuple[int, ...] = (1, 1, 1)
    batch: int = 1
    z: tuple[float, ...] = (1.0, 20.0)
    dtype: str = "float32"

    def __post_init__(self):
        if len(self.sizes) < 3:
            raise ValueError(f"sizes {','.join(map(str, self.sizes))} has no hidden layer: no tanh "
                             "to trace (give at least three sizes, e.g. 1,1,1)")
        largest = self.batch * max(self.sizes[1:])
        if largest > MAX_VALUES or max(self.sizes[:-1]) * max(self.sizes[1:]) > MAX_VALUES:
            raise ValueError(f"sizes {','.join(map(str, self.sizes))} with batch {self.batch} is too "
                             f"large to trace: at most {MAX_VALUES} values per step "
                             "(batch x width and d_in x d_out); try --sizes 1,1,1 --batch 1")


def trace_inputs(sizes, batch: int, z: float):
    """The worked-on-paper network of the module docstring, float64."""
    x, y = np.ones((batch, sizes[0])), np.zeros((batch, sizes[-1]))
    params = []
    for layer, (d_in, d_out) in enumerate(itertools.pairwise(sizes)):
        weight = z / d_in if layer == 0 else 1.0 / d_in
        params.append((np.full((d_in, d_out), weight), np.zeros(d_out)))
    return params, x, y


def trace(sizes, batch: int, z: float, dtype: str = "float32") -> pd.DataFrame:
    """One row per step, in order: the quantity, its formula, both values, whether they match."""
    from impls.jax_manual import compute_route as manual_route
    from impls.torch_autograd import compute_route as autograd_route

    params, x, y = trace_inputs(sizes, batch, z)
    m_loss, m_grads, m = manual_route(params, x, y, dtype=dtype)
    a_loss, a_grads, a = autograd_route(params, x, y, dtype=dtype)
    hidden = len(sizes) - 2
    steps = []

    def step(phase, quantity, formula, manual, autograd):
        steps.append({"phase": phase, "quantity": quantity, "formula": formula,
                      "manual": np.asarray(manual), "autograd": np.asarray(autograd)})

    for l in range(hidden):
        inp = "x" if l == 0 else f"t{l}"
        step("forward", f"z{l + 1}", f"{inp} @ W{l + 1} + b{l + 1}", m["z"][l], a["z"][l])
        step("forward", f"t{l + 1}", f"tanh(z{l + 1})", m["t"][l], a["t"][l])
    step("forward", "loss", "mean((out - y)^2)", m_loss, a_loss)
    L = hidden + 1
    step("backward", "d_out", "2 (out - y) / n: the message leaving the loss", m["d_out"], a["d_out"])
    step("backward", f"dW{L}", f"t{hidden}.T @ d_out", m_grads[-1][0], a_grads[-1][0])
    step("backward", f"db{L}", "sum(d_out)", m_grads[-1][1], a_grads[-1][1])
    for l in reversed(range(hidden)):
        above = "d_out" if l == hidden - 1 else f"d_z{l + 2}"
        inp = "x" if l == 0 else f"t{l}"
        step("backward", f"d_t{l + 1}", f"{above} @ W{l + 2}.T: the message arriving at t{l + 1}",
             m["d_t"][l], a["d_t"][l])
        step("backward", f"local{l + 1}", f"1 - t{l + 1}^2: tanh's local gradient",
             m["local"][l], a["local"][l])
        step("backward", f"d_z{l + 1}", f"d_t{l + 1} * local{l + 1}: message times local gradient",
             m["d_z"][l], a["d_z"][l])
        step("backward", f"dW{l + 1}", f"{inp}.T @ d_z{l + 1}", m_grads[l][0], a_grads[l][0])
        step("backward", f"db{l + 1}", f"sum(d_z{l + 1})", m_grads[l][1], a_grads[l][1])
    table = pd.DataFrame(steps)
    table["match"] = [_match(mv, av) for mv, av in zip(table["manual"], table["autograd"])]
    return table


def _match(manual: np.ndarray, autograd: np.ndarray) -> str:
    if np.array_equal(manual.astype(autograd.dtype), autograd):
        return "exact"
    scale = max(float(np.max(np.abs(autograd))), np.finfo(autograd.dtype).tiny)
    return f"rel {float(np.max(np.abs(manual - autograd))) / scale:.1e}"


def _values(array: np.ndarray) -> str:
    flat = np.asarray(array).ravel()
    return ", ".join(f"{v:.7g}" for v in flat)


def render(table: pd.DataFrame, z: float, dtype: str) -> str:
    shown = table.assign(manual=table["manual"].map(_values), autograd=table["autograd"].map(_values))
    lines = [f"## z = {z:g} ({dtype})", "",
             shown[["phase", "quantity", "formula", "manual", "autograd", "match"]]
             .rename(columns={"manual": "jax_manual", "autograd": "torch autograd"})
             .to_markdown(index=False, disable_numparse=True), ""]
    rows = table.set_index("quantity")
    dead = [q for q in rows.index if q.startswith("local") and not np.any(rows.loc[q, "manual"])]
    if dead:
        layer = dead[-1].removeprefix("local")
        lines.append(f"tanh(z{layer}) rounds to +-1 in {dtype}, so its local gradient is exactly 0: "
                     f"the message is multiplied by zero at layer {layer}, and the weights of that "
                     f"layer and every one before it get gradient 0 "
                     f"(dW1 = {_values(rows.loc['dW1', 'manual'])}). A dead tanh.")
    else:
        lines.append("Every local gradient is non-zero: the message reaches the first weights.")
    return "\n".join(lines) + "\n"
