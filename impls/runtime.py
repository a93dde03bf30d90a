"""Framework settings and facts, behind one interface, so the harness never imports JAX or torch.

    configure("torch", threads=2, matmul_precision="highest")
    runtime_info("jax")     # versions, devices, precision settings
    gpu_available("jax")
    ceiling_probe("jax", "cpu", n=1024), floor_probe("torch", "cpu")   # for the roofline
"""

from __future__ import annotations

import importlib
import platform

import numpy as np

_ADAPTERS = {"jax": "impls._jax", "torch": "impls._torch"}


def _adapter(framework: str):
    return importlib.import_module(_ADAPTERS[framework]) if framework in _ADAPTERS else None


def configure(framework: str, threads: int, matmul_precision: str) -> None:
    """Pin a framework's CPU threads and float32 matmul precision for this process."""
    adapter = _adapter(framework)
    if adapter is not None:
        adapter.configure(threads=threads, matmul_precision=matmul_precision)


def gpu_available(framework: str) -> bool:
    adapter = _adapter(framework)
    return adapter is not None and adapter.gpu_available()


def gpu_free_bytes(framework: str) -> int | None:
    """Free memory on the first GPU the framework sees, or None (no GPU, or it does not say)."""
    adapter = _adapter(framework)
    return adapter.gpu_free_bytes() if adapter is not None else None


def ceiling_probe(framework: str, device: str, n: int):
    """A :class:`~impls.contract.Prepared` float32 (n, n) @ (n, n) product in ``framework``."""
    return _adapter(framework).ceiling_probe(device, n)


def floor_probe(framework: str, device: str):
    """A :class:`~impls.contract.Prepared` call of the framework's cheapest synced operation."""
    return _adapter(framework).floor_probe(device)


def compiled_program(impl: str, params, x, y, dtype: str = "float32", device: str = "cpu") -> str:
    """The optimised XLA program (HLO text) of a JAX implementation's timed call."""
    from impls import REGISTRY

    if REGISTRY[impl].framework != "jax":
        raise ValueError(f"{impl} is not a JAX implementation: it has no XLA program")
    module = importlib.import_module(REGISTRY[impl].module)
    return _adapter("jax").compiled_text(module.loss_and_grads, params, x, y, dtype, device)


def runtime_info(framework: str) -> dict:
    info = {"python": platform.python_version(), "numpy": np.__version__}
    adapter = _adapter(framework)
    if adapter is not None:
        info.update(adapter.runtime_info())
    return info
