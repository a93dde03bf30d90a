"""torch_manual: the backward pass written by hand in PyTorch, no autograd.

The same route as ``jax_manual`` (see there): the message leaves the loss, is carried back
through the weights and multiplied by tanh's local gradient at every layer. The tensors do
not require gradients, so autograd records nothing: each call is plain eager kernels.
"""

from __future__ import annotations

import torch

from impls import _torch


def loss_and_grads(params, x, y):
    hs = [x]                                            # h_0 = x (B, d0)
    for W, b in params[:-1]:
        hs.append(torch.tanh(hs[-1] @ W + b))           # h_l (B, d_l)
    W, b = params[-1]
    out = hs[-1] @ W + b                                # (B, dL)
    loss = torch.mean((out - y) ** 2)                   # ()

    d_z = 2.0 * (out - y) / out.numel()                 # (B, dL)   the message leaving the loss
    grads = []
    for l in reversed(range(len(params))):
        W, _ = params[l]
        t = hs[l]                                       # (B, d_in)  this layer's input
        grads.append((t.T @ d_z, d_z.sum(dim=0)))       # dW (d_in, d_out), db (d_out,)
        if l == 0:
            break                                       # x is data: its gradient is not needed
        d_t = d_z @ W.T                                 # (B, d_in)  the message arriving at t
        d_z = d_t * (1 - t) * (1 + t)                   # (B, d_in)  times tanh's local gradient
    return loss, grads[::-1]


def prepare(params, x, y, dtype, device, steps=1):
    return _torch.prepare(loss_and_grads, params, x, y, dtype, device, steps, requires_grad=False)
