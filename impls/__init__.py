"""Gradient implementations of one tanh MLP, and the registry that names them.

    from impls import REGISTRY
    loss, grads = REGISTRY["jax_manual"].compute(params, x, y, dtype="float32")

The contract is in :mod:`impls.contract`; the network and its inputs in :mod:`impls.network`.
Adding an implementation: write a module with ``prepare(params, x, y, dtype, device, steps=1)``
(``impls/jax_vjp.py`` is a short one) and add one line below.
"""

from impls.contract import DEVICES, DTYPES, DeviceUnavailable, Grads, Implementation, Prepared
from impls.network import INITS, Params, Problem, make_inputs

REGISTRY: dict[str, Implementation] = {impl.name: impl for impl in (
    Implementation("numpy_reference", "numpy", "impls.numpy_reference",
                   "float64 oracle: hand-written backward in NumPy", timed=False),
    Implementation("jax_manual", "jax", "impls.jax_manual",
                   "hand-written backward in JAX, jitted, no autodiff"),
    Implementation("jax_autodiff", "jax", "impls.jax_autodiff",
                   "jax.jit(jax.value_and_grad(loss))"),
    Implementation("torch_autograd", "torch", "impls.torch_autograd",
                   "PyTorch autograd via torch.autograd.grad"),
    Implementation("jax_vjp", "jax", "impls.jax_vjp", "one VJP of the loss, jitted (the README's "
                   "example of adding an implementation)", default=False),
    Implementation("torch_manual", "torch", "impls.torch_manual",
                   "hand-written backward in PyTorch, no autograd", default=False),
    Implementation("torch_compile", "torch", "impls.torch_compile",
                   "torch.compile of the loss; autograd runs the compiled backward",
                   default=False),
)}

TIMED = tuple(name for name, impl in REGISTRY.items() if impl.timed and impl.default)
"""The three contenders every run and check includes unless told otherwise."""
ALL_TIMED = tuple(name for name, impl in REGISTRY.items() if impl.timed)
"""Every contender, the opt-in ones too (jax_vjp, torch_manual, torch_compile)."""

def load_plugin(module_name: str) -> list[str]:
    """Register the implementations of a module of your own: its ``IMPLEMENTATIONS`` list.

    ``python -m bench run --plugin my_module`` uses this in the harness and in every worker, so
    implementations can live outside this package. Returns the names added.
    """
    import importlib

    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(f"plugin {module_name!r} cannot be imported: {error}") from None
    implementations = getattr(module, "IMPLEMENTATIONS", None)
    if not isinstance(implementations, (list, tuple)) or not all(
            isinstance(impl, Implementation) for impl in implementations):
        raise ValueError(f"plugin {module_name!r} has no IMPLEMENTATIONS list of Implementation")
    for impl in implementations:
        REGISTRY[impl.name] = impl
    return [impl.name for impl in implementations]


__all__ = ["ALL_TIMED", "DEVICES", "DTYPES", "INITS", "REGISTRY", "TIMED", "DeviceUnavailable", "Grads",
           "Implementation", "Params", "Prepared", "Problem", "load_plugin", "make_inputs"]
