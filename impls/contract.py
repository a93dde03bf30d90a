"""The contract every gradient implementation meets, defined once.

An implementation computes ``(loss, grads)`` of the network in :mod:`impls.network`, ``grads`` a
list of ``(dW, db)`` in the structure of ``params``. It is used in two steps, so that a timer can
measure the call alone and never the conversion::

    prepared = impl.prepare(params, x, y, dtype="float32", device="cpu")   # convert and place, once
    out = prepared.run()         # the pure call: device arrays, possibly still being computed
    prepared.wait(out)           # returns once every array of out is computed
    loss, grads = prepared.to_numpy(out)

``impl.compute(params, x, y, dtype, device)`` does all four for scripts and tests.

Steps per call: ``prepare(..., steps=K)`` with ``x`` (K, B, d0) and ``y`` (K, B, dL) makes one
call run K gradient evaluations, one per batch, and return their sums: ``(sum of the K losses,
sum of the K gradients)``. JAX runs them in one dispatch (``lax.scan``); torch in a Python loop
(on a GPU, replayed from a captured CUDA graph). It shows how much of a small case's time is the
cost of dispatching a call.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

DTYPES = ("float32", "float64")
DEVICES = ("cpu", "gpu")

Grads = list[tuple[np.ndarray, np.ndarray]]
"""``[(dW_1, db_1), ..., (dW_L, db_L)]`` as NumPy arrays of the computed dtype."""


class DeviceUnavailable(RuntimeError):
    """The requested device does not exist here (no GPU), or the framework cannot use it."""


@dataclass(frozen=True)
class Prepared:
    """One implementation bound to one problem whose inputs are already converted and placed.

    Invariants:
      * ``run()`` is pure: it reads only the converted inputs, leaves no state behind (no
        accumulated ``.grad``, no cache that changes the next call) and returns fresh arrays
        ``(loss, grads)`` on the device. It may return before the device has finished.
      * ``wait(out)`` returns only once every array in ``out`` is computed (JAX: block until
        ready on the whole output; CUDA: synchronise). ``wait(run())`` is therefore exactly the
        cost of one gradient evaluation, which is what the harness times.
      * ``to_numpy(out)`` copies ``out`` to ``(float loss, Grads)``; it is never timed.
    """

    run: Callable[[], Any]
    wait: Callable[[Any], None]
    to_numpy: Callable[[Any], tuple[float, Grads]]


@dataclass(frozen=True)
class Implementation:
    """A registered implementation: its name, its framework and the module that holds it.

    The module is imported on first use, so that listing the registry imports neither JAX nor
    torch, and a process that times one framework never loads the other. The module defines
    ``prepare(params, x, y, dtype, device) -> Prepared`` (or the function named by ``entry``).
    """

    name: str
    framework: str  # "jax", "torch" or "numpy"
    module: str
    description: str
    timed: bool = True  # False for the oracle: it is the reference, not a contender
    default: bool = True  # False: opt-in, named explicitly (--impl, a preset's impls)
    entry: str = "prepare"

    def prepare(self, params, x, y, dtype: str = "float32", device: str = "cpu",
                steps: int = 1) -> Prepared:
        if dtype not in DTYPES:
            raise ValueError(f"unknown dtype {dtype!r}; choose from {', '.join(DTYPES)}")
        if device not in DEVICES:
            raise ValueError(f"unknown device {device!r}; choose from {', '.join(DEVICES)}")
        if steps != 1 and (np.ndim(x) != 3 or np.shape(x)[0] != steps):
            raise ValueError(f"steps={steps} needs x of shape (steps, B, d0); got {np.shape(x)}")
        prepare = getattr(importlib.import_module(self.module), self.entry)
        if steps == 1:
            return prepare(params, x, y, dtype=dtype, device=device)
        return prepare(params, x, y, dtype=dtype, device=device, steps=steps)

    def compute(self, params, x, y, dtype: str = "float32", device: str = "cpu",
                steps: int = 1) -> tuple[float, Grads]:
        """Prepare, call once, wait, and return ``(loss, grads)`` as a float and NumPy arrays."""
        prepared = self.prepare(params, x, y, dtype=dtype, device=device, steps=steps)
        out = prepared.run()
        prepared.wait(out)
        return prepared.to_numpy(out)
