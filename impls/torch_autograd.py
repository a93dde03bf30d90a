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


def prepare(params, x, y, dtype, device, steps=1):
    return _torch.prepare(loss_and_grads, params, x, y, dtype, device, steps, requires_grad=True)


def compute_route(params, x, y, dtype="float32", device="cpu"):
    """``(loss, grads, route)`` as autograd computes them, NumPy arrays, for the trace.

    ``route`` has the keys of :func:`impls.jax_manual.forward_backward` (``z``, ``t``, ``d_t``,
    ``d_z`` per hidden layer, ``d_out``), every message read from an intermediate's ``.grad``,
    and ``local``: tanh's local gradient as torch's own tanh backward computes it.
    """
    target, torch_dtype = _torch.torch_device(device), getattr(torch, dtype)

    def tensor(array, grad=False):
        return torch.tensor(array, dtype=torch_dtype, device=target, requires_grad=grad)

    params_t = [(tensor(W, True), tensor(b, True)) for W, b in params]
    h, zs, ts = tensor(x), [], []
    for W, b in params_t[:-1]:
        zs.append(h @ W + b)
        ts.append(torch.tanh(zs[-1]))
        h = ts[-1]
    W, b = params_t[-1]
    out = h @ W + b
    for intermediate in (*zs, *ts, out):
        intermediate.retain_grad()
    loss = torch.mean((out - tensor(y)) ** 2)
    loss.backward()
    local = []
    for z in zs:
        z_leaf = z.detach().requires_grad_()
        local.append(torch.autograd.grad(torch.tanh(z_leaf), z_leaf, torch.ones_like(z_leaf))[0])

    def host(t):
        return t.detach().cpu().numpy()

    route = {"z": [host(z) for z in zs], "t": [host(t) for t in ts],
             "d_t": [host(t.grad) for t in ts], "d_z": [host(z.grad) for z in zs],
             "d_out": host(out.grad), "local": [host(g) for g in local]}
    return float(loss.item()), [(host(W.grad), host(b.grad)) for W, b in params_t], route
