"""jax_autodiff: ``jax.value_and_grad`` of the network's loss, jitted."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from impls import _jax, network


def _loss(params, x, y):
    return network.loss(params, x, y, jnp)


loss_and_grads = jax.jit(jax.value_and_grad(_loss))


def prepare(params, x, y, dtype, device, steps=1):
    return _jax.prepare(loss_and_grads, params, x, y, dtype, device, steps)
