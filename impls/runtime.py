"""Framework settings and facts, behind one interface, so the harness never imports JAX or torch.

    configure("torch", threads=2, matmul_precision="highest")
    runtime_info("jax")     # versions, devices, precision settings
    gpu_available("jax")
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


def runtime_info(framework: str) -> dict:
    info = {"python": platform.python_version(), "numpy": np.__version__}
    adapter = _adapter(framework)
    if adapter is not None:
        info.update(adapter.runtime_info())
    return info
