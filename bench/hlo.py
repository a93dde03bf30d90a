"""What XLA compiles the two JAX implementations into, side by side: the evidence for speed claims.

    python -m bench hlo --sizes 128,256,256,1 --batch 2048

Counts the instructions of each optimised program by opcode (dot, transpose, copy, fusion, ...)
and says whether the two programs do the same kinds and numbers of operations.
"""

from __future__ import annotations

import re
from collections import Counter

import pandas as pd

from impls import make_inputs, runtime
from impls.network import Problem

_INSTRUCTION = re.compile(r"^\s*(?:ROOT\s+)?%\S+\s*=\s*\S+(?:\{[^}]*\})?\s+([a-z][\w-]*)\(")
OPCODES_OF_INTEREST = ("dot", "transpose", "copy", "fusion", "reduce", "reduce-window", "tanh",
                       "multiply", "add", "subtract", "broadcast")


def opcode_counts(hlo_text: str) -> Counter:
    """How many instructions of each opcode the program holds (inside fusions too)."""
    counts = Counter()
    for line in hlo_text.splitlines():
        match = _INSTRUCTION.match(line)
        if match and match.group(1) not in ("parameter", "constant", "bitcast", "tuple",
                                            "get-tuple-element"):
            counts[match.group(1)] += 1
    return counts


def compare_programs(problem: Problem, dtype: str = "float32",
                     impls=("jax_manual", "jax_autodiff")) -> pd.DataFrame:
    params, x, y = make_inputs(problem)
    counts = {impl: opcode_counts(runtime.compiled_program(impl, params, x, y, dtype))
              for impl in impls}
    opcodes = sorted(set().union(*counts.values()),
                     key=lambda op: (op not in OPCODES_OF_INTEREST, op))
    return pd.DataFrame({impl: [counts[impl][op] for op in opcodes] for impl in impls},
                        index=pd.Index(opcodes, name="opcode"))
