"""JAX's side of the contract: placing inputs, 64-bit mode, waiting, and runtime facts.

JAX's 64-bit mode is process-global. float64 work enters it only inside ``jax.enable_x64(True)``
scopes (conversion and each call), so that nothing else in the process sees it switched on.
"""

from __future__ import annotations

import contextlib
import functools

import jax
import jax.numpy as jnp
import numpy as np

from impls.contract import DeviceUnavailable, Prepared

# XLA's name for the device kind each of our device names means.
_PLATFORMS = {"cpu": "cpu", "gpu": "gpu"}


def precision_scope(dtype: str):
    """The scope a computation in ``dtype`` runs in: 64-bit mode for float64, nothing otherwise."""
    return jax.enable_x64(True) if dtype == "float64" else contextlib.nullcontext()


def jax_device(device: str):
    try:
        return jax.devices(_PLATFORMS[device])[0]
    except RuntimeError as error:
        raise DeviceUnavailable(f"JAX sees no {device} device ({error})") from None


def prepare(loss_and_grads, params, x, y, dtype: str, device: str, steps: int = 1) -> Prepared:
    """Bind a jitted ``loss_and_grads(params, x, y)`` to inputs converted once to dtype/device.

    With ``steps`` > 1, ``x`` and ``y`` hold that many batches and one call scans over them.
    """
    target = jax_device(device)
    fn = loss_and_grads if steps == 1 else _scan_steps(loss_and_grads)
    # An input too large for the dtype becomes inf; the harness reports that as a fault.
    with precision_scope(dtype), np.errstate(over="ignore"):
        args = jax.device_put(([(W.astype(dtype), b.astype(dtype)) for W, b in params],
                               x.astype(dtype), y.astype(dtype)), target)

    def run():
        with precision_scope(dtype):
            return fn(*args)

    return Prepared(run=run, wait=jax.block_until_ready, to_numpy=to_numpy)


@functools.cache
def _scan_steps(loss_and_grads):
    """One jitted call that sums ``loss_and_grads`` over a leading axis of batches."""

    @jax.jit
    def steps(params, xs, ys):
        def one_step(total, batch):
            return jax.tree.map(jnp.add, total, loss_and_grads(params, *batch)), None

        zeros = jax.tree.map(jnp.zeros_like, (xs[0, 0, 0], params))
        total, _ = jax.lax.scan(one_step, zeros, (xs, ys))
        return total

    return steps


def to_host(tree):
    """Any tree of device arrays as NumPy arrays."""
    return jax.device_get(tree)


def to_numpy(out):
    loss, grads = jax.device_get(out)
    return float(loss), [(np.asarray(dW), np.asarray(db)) for dW, db in grads]


_matmul = jax.jit(lambda a, b: a @ b)
_identity = jax.jit(lambda a: a)


def _no_result(out):
    return 0.0, []


def ceiling_probe(device: str, n: int) -> Prepared:
    """A float32 (n, n) @ (n, n) product: 2 n^3 flops, the compute ceiling's call."""
    rng = np.random.default_rng(0)
    a, b = jax.device_put((rng.standard_normal((n, n), dtype=np.float32),
                           rng.standard_normal((n, n), dtype=np.float32)), jax_device(device))
    return Prepared(run=lambda: _matmul(a, b), wait=jax.block_until_ready, to_numpy=_no_result)


def floor_probe(device: str) -> Prepared:
    """A jitted identity on one float: the cheapest call that dispatches and waits."""
    a = jax.device_put(np.zeros(1, np.float32), jax_device(device))
    return Prepared(run=lambda: _identity(a), wait=jax.block_until_ready, to_numpy=_no_result)


def compiled_text(loss_and_grads, params, x, y, dtype: str, device: str = "cpu") -> str:
    """The optimised HLO that XLA runs for ``loss_and_grads`` on these inputs."""
    with precision_scope(dtype):
        args = jax.device_put(([(W.astype(dtype), b.astype(dtype)) for W, b in params],
                               x.astype(dtype), y.astype(dtype)), jax_device(device))
        return loss_and_grads.lower(*args).compile().as_text()


def gpu_available() -> bool:
    try:
        return bool(jax.devices("gpu"))
    except RuntimeError:
        return False


def gpu_free_bytes() -> int | None:
    try:
        stats = jax.devices("gpu")[0].memory_stats() or {}
    except RuntimeError:
        return None
    return stats["bytes_limit"] - stats.get("bytes_in_use", 0) if "bytes_limit" in stats else None


def configure(threads: int, matmul_precision: str) -> None:
    """Pin float32 matmul precision: "highest" (full float32) or "tensorfloat32".

    XLA sizes its CPU thread pool from the process's CPU affinity, which the harness sets
    before this process starts; ``threads`` is recorded, not applied, here.
    """
    del threads
    jax.config.update("jax_default_matmul_precision", matmul_precision)


def runtime_info() -> dict:
    import jaxlib

    return {"jax": jax.__version__, "jaxlib": jaxlib.__version__,
            "jax_devices": [str(d) for d in jax.devices()],
            "jax_default_matmul_precision": str(jax.config.jax_default_matmul_precision)}
