"""Deliberately wrong backward passes, registered only in tests, to show the gate can fail.

The two mistakes people make in their first hand-written backward: tanh's local gradient
written as ``1 - t`` instead of ``(1 - t) * (1 + t)``, and the bias gradient forgotten.
"""

import numpy as np

from impls import Implementation
from impls.contract import Prepared
from impls.numpy_reference import loss_and_grads


def _tanh_backward_missing_factor(params, x, y):
    hs = [x]
    for W, b in params[:-1]:
        hs.append(np.tanh(hs[-1] @ W + b))
    W, b = params[-1]
    out = hs[-1] @ W + b
    d_z = 2.0 * (out - y) / out.size
    grads = []
    for l in reversed(range(len(params))):
        W, _ = params[l]
        t = hs[l]
        grads.append((t.T @ d_z, d_z.sum(axis=0)))
        if l == 0:
            break
        d_z = (d_z @ W.T) * (1 - t)                     # wrong: should be (1 - t) * (1 + t)
    return np.mean((out - y) ** 2), grads[::-1]


def _first_bias_gradient_dropped(params, x, y):
    loss, grads = loss_and_grads(params, x, y)
    dW1, db1 = grads[0]
    return loss, [(dW1, np.zeros_like(db1))] + grads[1:]


def _prepared(function, params, x, y, dtype):
    args = ([(W.astype(dtype), b.astype(dtype)) for W, b in params], x.astype(dtype), y.astype(dtype))
    return Prepared(run=lambda: function(*args), wait=lambda out: None,
                    to_numpy=lambda out: (float(out[0]), list(out[1])))


def prepare_missing_factor(params, x, y, dtype, device):
    return _prepared(_tanh_backward_missing_factor, params, x, y, dtype)


def prepare_dropped_bias(params, x, y, dtype, device):
    return _prepared(_first_bias_gradient_dropped, params, x, y, dtype)


WRONG = {
    "wrong_tanh_grad": Implementation("wrong_tanh_grad", "numpy", "wrong_impls",
                                      "1 - t as tanh's local gradient",
                                      entry="prepare_missing_factor"),
    "dropped_bias": Implementation("dropped_bias", "numpy", "wrong_impls",
                                   "first layer's bias gradient left at zero",
                                   entry="prepare_dropped_bias"),
}
