"""torch_compile: PyTorch autograd with the loss compiled by ``torch.compile``.

TorchDynamo captures the forward pass, and AOTAutograd derives and compiles its backward, so
``torch.autograd.grad`` runs a compiled backward graph. The first call compiles (tens of
seconds on a CPU, reported as ``compile_s``); it is opt-in for that reason (``full`` preset,
or ``--impl torch_compile``).
"""

from __future__ import annotations

import torch

from impls import _torch, network


@torch.compile
def _loss(params, x, y):
    return network.loss(params, x, y, torch)


def loss_and_grads(params, x, y):
    loss = _loss(params, x, y)
    flat = torch.autograd.grad(loss, [p for layer in params for p in layer])
    return loss.detach(), list(zip(flat[0::2], flat[1::2]))


def prepare(params, x, y, dtype, device, steps=1):
    return _torch.prepare(loss_and_grads, params, x, y, dtype, device, steps, requires_grad=True)
