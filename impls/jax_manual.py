"""jax_manual: the backward pass written by hand in JAX, jitted, with no autodiff at all.

The courier's route: the message leaves the loss as d loss / d out, and at every layer it is
carried back through the weights (``d_z @ W.T``) and multiplied by tanh's local gradient
``1 - t**2``, taken from the saved activation ``t`` as ``(1 - t) * (1 + t)``: the same value,
better conditioned when |t| is near 1. The backward loop is the forward loop in reverse.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from impls import _jax


def forward_backward(params, x, y):
    """``(loss, grads, d_hs, d_zs)``: the loss, its gradients, and every message on the way.

    ``d_zs[l]`` is d loss / d z_{l+1} (the last is d loss / d out); ``d_hs[l]`` is d loss / d h_{l+1},
    for the hidden layers only.
    """
    hs = [x]                                            # h_0 = x (B, d0)
    for W, b in params[:-1]:
        hs.append(jnp.tanh(hs[-1] @ W + b))             # h_l (B, d_l)
    W, b = params[-1]
    out = hs[-1] @ W + b                                # (B, dL)
    loss = jnp.mean((out - y) ** 2)                     # ()

    d_z = 2.0 * (out - y) / out.size                    # (B, dL)   the message leaving the loss
    grads, d_hs, d_zs = [], [], [d_z]
    for l in reversed(range(len(params))):
        W, _ = params[l]
        t = hs[l]                                       # (B, d_in)  this layer's input, a tanh output
        grads.append((t.T @ d_z, d_z.sum(axis=0)))      # dW (d_in, d_out), db (d_out,)
        if l == 0:
            break                                       # x is data: its gradient is not needed
        d_h = d_z @ W.T                                 # (B, d_in)  the message arriving at t
        d_z = d_h * (1 - t) * (1 + t)                   # (B, d_in)  times tanh's local gradient
        d_hs.append(d_h)
        d_zs.append(d_z)
    return loss, grads[::-1], d_hs[::-1], d_zs[::-1]


@jax.jit
def loss_and_grads(params, x, y):
    # XLA drops the unused messages, so this timed path computes no more than it returns.
    loss, grads, _, _ = forward_backward(params, x, y)
    return loss, grads


def prepare(params, x, y, dtype, device):
    return _jax.prepare(loss_and_grads, params, x, y, dtype, device)
