"""torch_autograd: PyTorch's autograd through ``torch.autograd.grad``.

``torch.autograd.grad`` returns the gradients instead of accumulating them into ``.grad``, so
each call is pure: nothing carries over to the next one.
"""

from __future__ import annotations

import torch

from impls import _torch, network


def loss_and_grads(params, x, y):
    loss = network.loss(params, x, y, torch)
    flat = torch.autograd.grad(loss, [p for layer in params for p in layer])
    return loss.detach(), list(zip(flat[0::2], flat[1::2]))


def prepare(params, x, y, dtype, device):
    return _torch.prepare(loss_and_grads, params, x, y, dtype, device, requires_grad=True)
