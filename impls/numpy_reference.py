"""numpy_reference: the float64 oracle, a hand-written backward pass in NumPy.

Every other implementation is measured against it. Its own correctness is checked against
central finite differences of the float64 loss (tests/test_impls.py), which share no code with
it. The agreement gate (bench/agreement.py) also uses :func:`error_scale` and the ``tanh``
argument to measure how much rounding a correct implementation may show in each tensor.
"""

from __future__ import annotations

import numpy as np

from impls.contract import DeviceUnavailable, Prepared


def _forward(params, x, tanh):
    hs = [x]                                            # h_0 = x (B, d0)
    for W, b in params[:-1]:
        hs.append(tanh(hs[-1] @ W + b))                 # h_l (B, d_l)
    W, b = params[-1]
    return hs, hs[-1] @ W + b                           # out (B, dL)


def _backward(params, hs, d_z):
    """``[(dW, db), ...]`` and each layer's (input, message) pair, from d loss / d out."""
    grads, steps = [], []
    for l in reversed(range(len(params))):
        W, _ = params[l]
        t = hs[l]                                       # (B, d_in)
        steps.append((t, d_z))
        grads.append((t.T @ d_z, d_z.sum(axis=0)))      # dW (d_in, d_out), db (d_out,)
        if l == 0:
            break
        d_t = d_z @ W.T                                 # (B, d_in)
        d_z = d_t * (1 - t) * (1 + t)                   # (B, d_in)
    return grads[::-1], steps[::-1]


def loss_and_grads(params, x, y, tanh=np.tanh):
    """``(loss, grads)`` in float64. ``tanh`` can be replaced to study rounding (bench/agreement.py)."""
    hs, out = _forward(params, x, tanh)
    loss = np.mean((out - y) ** 2)                      # ()
    grads, _ = _backward(params, hs, 2.0 * (out - y) / out.size)
    return loss, grads


def error_scale(params, x, y):
    """``(loss_scale, [(dW_scale, db_scale), ...])``: the magnitudes each result is summed from.

    A tensor computed as a sum (``t.T @ d_z`` over the batch, ``d_z.sum(0)``) carries a rounding
    error proportional to the sum of its terms' magnitudes, ``|t|.T @ |d_z|``, not to its value:
    where the terms cancel, the value is small and the error is not.
    """
    hs, out = _forward(params, x, np.tanh)
    _, steps = _backward(params, hs, 2.0 * (out - y) / out.size)
    return (np.mean((out - y) ** 2),
            [(np.abs(t).T @ np.abs(d_z), np.abs(d_z).sum(axis=0)) for t, d_z in steps])


def summed_over_steps(params, xs, ys):
    """``(loss, grads)`` summed over a leading axis of batches: what ``steps=K`` computes."""
    results = [loss_and_grads(params, x, y) for x, y in zip(xs, ys)]
    loss = sum(loss for loss, _ in results)
    grads = [(sum(g[l][0] for _, g in results), sum(g[l][1] for _, g in results))
             for l in range(len(params))]
    return loss, grads


def prepare(params, x, y, dtype, device, steps=1):
    if device != "cpu":
        raise DeviceUnavailable("numpy_reference runs on the CPU only")
    args = ([(W.astype(dtype), b.astype(dtype)) for W, b in params], x.astype(dtype), y.astype(dtype))
    function = loss_and_grads if steps == 1 else summed_over_steps
    return Prepared(run=lambda: function(*args), wait=lambda out: None,
                    to_numpy=lambda out: (float(out[0]), [(dW, db) for dW, db in out[1]]))
