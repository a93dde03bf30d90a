"""Memory a case needs, estimated before anything is allocated, and memory available.

The estimate is an upper bound of one worker's peak for one case, in bytes:

* the timed implementation, in its dtype: parameters, gradients, inputs (all ``steps`` batches),
  the saved activations and pre-activations of every layer and the messages of the widest one,
  times FRAMEWORK_OVERHEAD for the framework's temporaries (fusion buffers, autograd's saved
  tensors, the allocator's slack);
* the float64 oracle the worker checks it against: parameters and gradients, the data, the
  activations, run three times (the answer and two perturbed runs for the gate).
"""

from __future__ import annotations

from pathlib import Path

from impls.network import Problem

# Frameworks hold temporaries beside what the math needs: autograd saves its inputs, XLA keeps
# fusion outputs, allocators round up. Twice the arithmetic need covers what was seen here.
FRAMEWORK_OVERHEAD = 2.0
GIB = 2 ** 30


def case_bytes(problem: Problem, dtype: str, steps: int = 1) -> int:
    """Peak bytes one benchmark of ``problem`` may take (module docstring)."""
    item = 4 if dtype == "float32" else 8
    sizes, batch = problem.sizes, problem.batch
    params = problem.n_params
    data = steps * batch * (sizes[0] + sizes[-1])
    activations = 2 * batch * sum(sizes[1:])  # z and t of every layer
    messages = 3 * batch * max(sizes)  # d_t, local gradient, d_z of the widest layer
    timed = item * (2 * params + data + activations + messages) * FRAMEWORK_OVERHEAD
    oracle = 8 * (2 * params + batch * (sizes[0] + sizes[-1]) + activations + messages) * 3
    return int(timed + oracle)


def available_cpu_bytes(meminfo: Path = Path("/proc/meminfo")) -> int | None:
    """MemAvailable of this machine, or None where the kernel does not say."""
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def refusal(problem: Problem, dtype: str, steps: int, available: int | None) -> str:
    """Why a case cannot run in ``available`` bytes, or "" when it can (or nothing is known)."""
    needed = case_bytes(problem, dtype, steps)
    if available is None or needed <= available:
        return ""
    return (f"refused: needs about {needed / GIB:.1f} GiB ({dtype}, batch {problem.batch}, "
            f"{problem.n_params:,} parameters), {available / GIB:.1f} GiB available")
