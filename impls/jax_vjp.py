"""jax_vjp: the gradient as one vector-Jacobian product of the loss, jitted."""

import jax
import jax.numpy as jnp

from impls import _jax, network


@jax.jit
def loss_and_grads(params, x, y):
    loss, pullback = jax.vjp(lambda p: network.loss(p, x, y, jnp), params)
    (grads,) = pullback(jnp.ones_like(loss))
    return loss, grads


def prepare(params, x, y, dtype, device, steps=1):
    return _jax.prepare(loss_and_grads, params, x, y, dtype, device, steps)
