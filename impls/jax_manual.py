"""jax_manual: the backward pass written by hand in JAX, jitted, with no autodiff at all.

The courier's route: the message leaves the loss as d loss / d out, and at every layer it is
carried back through the weights (``d_z @ W.T``) and multiplied by tanh's local gradient
``1 - t**2``, taken from the saved activation ``t`` as ``(1 - t) * (1 + t)``: the same value,
better conditioned when |t| is near 1. The backward loop is the forward loop in reverse.

``dW = t.T @ d_z`` is written as a contraction over the batch axis, ``tensordot(t, d_z, (0, 0))``:
the same product, but XLA then reads ``t`` in place, as it does for ``jax.grad``. Written with
``t.T``, XLA:CPU materialised the transpose of ``t`` (a copy of the whole activation) whenever
``d_z`` has one column, which made this pass 11% slower than ``jax.grad`` on a
128-256-256-1 net at batch 2048 (paired median ratio 1.11, now 1.00; README, "Performance").
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from impls import _jax


def forward_backward(params, x, y):
    """``(loss, grads, route)``: the loss, its gradients, and everything the courier passed.

    ``route`` holds, per hidden layer l = 1 .. L-1 (index l - 1): ``z`` and ``t`` (its
    pre-activations and activations, (B, d_l)), ``d_t`` (the message arriving at t, d loss / d t),
    ``local`` (tanh's local gradient) and ``d_z`` (the message after it, d loss / d z); and
    ``d_out``, the message leaving the loss, (B, dL).
    """
    zs, hs = [], [x]                                    # h_0 = x (B, d0)
    for W, b in params[:-1]:
        zs.append(hs[-1] @ W + b)                       # z_l (B, d_l)
        hs.append(jnp.tanh(zs[-1]))                     # h_l (B, d_l)
    W, b = params[-1]
    out = hs[-1] @ W + b                                # (B, dL)
    loss = jnp.mean((out - y) ** 2)                     # ()

    d_out = 2.0 * (out - y) / out.size                  # (B, dL)   the message leaving the loss
    d_z = d_out
    grads, d_ts, locals_, d_zs = [], [], [], []
    for l in reversed(range(len(params))):
        W, _ = params[l]
        t = hs[l]                                       # (B, d_in)  this layer's input, a tanh output
        dW = jnp.tensordot(t, d_z, axes=(0, 0))         # (d_in, d_out)  t.T @ d_z (docstring)
        grads.append((dW, d_z.sum(axis=0)))             # db (d_out,)
        if l == 0:
            break                                       # x is data: its gradient is not needed
        d_t = d_z @ W.T                                 # (B, d_in)  the message arriving at t
        local = (1 - t) * (1 + t)                       # (B, d_in)  tanh's local gradient 1 - t^2
        d_z = d_t * local                               # (B, d_in)  the message after the tanh
        d_ts.append(d_t)
        locals_.append(local)
        d_zs.append(d_z)
    route = {"z": zs, "t": hs[1:], "d_t": d_ts[::-1], "local": locals_[::-1], "d_z": d_zs[::-1],
             "d_out": d_out}
    return loss, grads[::-1], route


@jax.jit
def loss_and_grads(params, x, y):
    # XLA drops the unused route, so this timed path computes no more than it returns.
    loss, grads, _ = forward_backward(params, x, y)
    return loss, grads


route = jax.jit(forward_backward)
"""The same pass, returning the route too: for diagnostics (bench/diagnose.py), never timed."""


def prepare(params, x, y, dtype, device, steps=1):
    return _jax.prepare(loss_and_grads, params, x, y, dtype, device, steps)


def compute_route(params, x, y, dtype="float32", device="cpu"):
    """``(loss, grads, route)`` as NumPy arrays, from one call of :data:`route`."""
    prepared = _jax.prepare(route, params, x, y, dtype, device)
    return _jax.to_host(prepared.run())
