"""The one network every implementation computes, and the NumPy inputs handed to all of them.

The network, written once (shapes on the right)::

    sizes  = (d0, d1, ..., dL)               at least two entries: L >= 1 layers
    h_0    = x                               (B, d0)
    z_l    = h_{l-1} @ W_l + b_l             (B, d_l)      l = 1 .. L
    h_l    = tanh(z_l)                       (B, d_l)      l = 1 .. L-1   (hidden layers)
    out    = z_L                             (B, dL)       the last layer is linear
    loss   = mean((out - y) ** 2)            ()            mean over all B * dL elements

    params = [(W_1, b_1), ..., (W_L, b_L)]   W_l (d_{l-1}, d_l), b_l (d_l,)

Parameters and data are made here, once, in float64 NumPy from a seed, and every implementation
receives the same arrays (each converts them to its own dtype and device). Run
``python -m bench check`` to see the implementations agree on one such problem.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

INITS = ("normal", "xavier", "kaiming")
# Kaiming's gain for tanh (PyTorch's torch.nn.init.calculate_gain("tanh")): it offsets the
# squashing so the activations' spread stays roughly constant from layer to layer.
TANH_GAIN = 5.0 / 3.0

Params = list[tuple[Any, Any]]
"""A list of ``(W, b)`` pairs, one per layer, in any array type (NumPy, JAX, torch)."""


@dataclass(frozen=True)
class Problem:
    """Everything that determines the arrays of one gradient problem.

    ``init`` picks the weight std per layer (see :func:`weight_std`); ``scale`` then multiplies
    every weight (a large scale drives tanh into saturation: the dead-tanh regime). Biases are
    drawn from N(0, bias_std**2), never zero by default: zero biases would hide a wrong bias
    gradient. Parameters and data come from independent streams of one seed, so changing the
    init changes the weights and never the data.
    """

    sizes: tuple[int, ...] = (16, 32, 32, 1)
    batch: int = 32
    init: str = "normal"
    std: float = 1.0  # weight std of the "normal" init
    scale: float = 1.0  # multiplies the initial weights, after the init
    bias_std: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "sizes", tuple(self.sizes))
        if len(self.sizes) < 2:
            raise ValueError(f"sizes {format_sizes(self.sizes)!r} has {len(self.sizes)} entries; "
                             "need at least two (input and output widths)")
        for size in self.sizes:
            if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
                raise ValueError(f"size {size!r} in sizes {format_sizes(self.sizes)!r} is not a "
                                 "positive integer")
        if isinstance(self.batch, bool) or not isinstance(self.batch, int) or self.batch <= 0:
            raise ValueError(f"batch {self.batch!r} is not a positive integer")
        if self.init not in INITS:
            raise ValueError(f"unknown init {self.init!r}; choose from {', '.join(INITS)}")
        for name in ("std", "scale", "bias_std"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} {value!r} is not a finite number >= 0")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed {self.seed!r} is not an integer >= 0")

    @property
    def n_layers(self) -> int:
        return len(self.sizes) - 1

    @property
    def n_params(self) -> int:
        return sum(d_in * d_out + d_out for d_in, d_out in zip(self.sizes[:-1], self.sizes[1:]))


def format_sizes(sizes) -> str:
    return ",".join(str(size) for size in sizes)


def weight_std(init: str, fan_in: int, fan_out: int, std: float, followed_by_tanh: bool) -> float:
    """The std of a layer's initial weights, before ``scale``.

    normal:  ``std`` (1.0 by default), whatever the width.
    xavier:  Glorot's normal init, sqrt(2 / (fan_in + fan_out)).
    kaiming: gain / sqrt(fan_in), gain 5/3 for a layer that feeds tanh, 1 for the linear output.
    """
    if init == "normal":
        return std
    if init == "xavier":
        return math.sqrt(2.0 / (fan_in + fan_out))
    if init == "kaiming":
        return (TANH_GAIN if followed_by_tanh else 1.0) / math.sqrt(fan_in)
    raise ValueError(f"unknown init {init!r}; choose from {', '.join(INITS)}")


def make_params(problem: Problem) -> Params:
    """float64 ``[(W, b), ...]`` for ``problem``: W from its init times ``scale``, b small and random."""
    rng = np.random.default_rng([problem.seed, 0])
    params = []
    for layer, (d_in, d_out) in enumerate(zip(problem.sizes[:-1], problem.sizes[1:]), start=1):
        std = weight_std(problem.init, d_in, d_out, problem.std, layer < problem.n_layers)
        W = rng.standard_normal((d_in, d_out)) * (std * problem.scale)
        b = rng.standard_normal(d_out) * problem.bias_std
        params.append((W, b))
    return params


def make_data(problem: Problem) -> tuple[np.ndarray, np.ndarray]:
    """float64 inputs ``x`` (B, d0) and targets ``y`` (B, dL), both standard normal."""
    rng = np.random.default_rng([problem.seed, 1])
    x = rng.standard_normal((problem.batch, problem.sizes[0]))
    y = rng.standard_normal((problem.batch, problem.sizes[-1]))
    return x, y


def make_inputs(problem: Problem) -> tuple[Params, np.ndarray, np.ndarray]:
    """``(params, x, y)``: the float64 arrays every implementation is handed."""
    return make_params(problem), *make_data(problem)


def forward(params: Params, x, xp):
    """The network's output (B, dL); ``xp`` is the array namespace (numpy, jax.numpy or torch)."""
    h = x
    for W, b in params[:-1]:
        h = xp.tanh(h @ W + b)
    W, b = params[-1]
    return h @ W + b


def loss(params: Params, x, y, xp):
    """Mean squared error over every element of the output, in the namespace ``xp``."""
    return xp.mean((forward(params, x, xp) - y) ** 2)
