"""Paired, interleaved timing of two calls: a ratio that holds while the machine's speed drifts.

A shared machine speeds up and slows down over seconds. Timed one after the other, A's rounds
and B's rounds meet different machines, and their ratio carries the drift. Timed in pairs,
each A block right beside a B block, the drift hits both members of a pair alike, and the ratio
of each pair is nearly free of it. The order alternates (A B, B A, A B, ...) so that a trend
within a pair favours neither side. The figure reported is the median of the per-pair ratios,
with their quartiles as the spread.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# Each timed block runs the call this long at least, so that the timer's resolution and the
# cost of reading it are negligible next to the block.
BLOCK_SECONDS = 1e-3
MIN_PAIRS, MAX_PAIRS = 10, 400


@dataclass(frozen=True)
class PairedRatio:
    """Per-pair times of A and B (seconds per call) and the statistics of their ratios A / B."""

    a: np.ndarray
    b: np.ndarray

    @property
    def ratios(self) -> np.ndarray:
        return self.a / self.b

    @property
    def median(self) -> float:
        return float(np.median(self.ratios))

    @property
    def q1(self) -> float:
        return float(np.percentile(self.ratios, 25))

    @property
    def q3(self) -> float:
        return float(np.percentile(self.ratios, 75))


def plan_pairs(seconds_per_call: float, budget_seconds: float) -> tuple[int, int]:
    """``(pairs, iterations)``: calls per block to last BLOCK_SECONDS, pairs to fill the budget."""
    iterations = max(1, math.ceil(BLOCK_SECONDS / max(seconds_per_call, 1e-9)))
    pairs = int(budget_seconds / (2 * iterations * max(seconds_per_call, 1e-9)))
    return min(max(pairs, MIN_PAIRS), MAX_PAIRS), iterations


def time_pairs(call_a: Callable[[], None], call_b: Callable[[], None], pairs: int, iterations: int,
               timer: Callable[[], float] = time.perf_counter) -> PairedRatio:
    """Time ``pairs`` pairs of blocks of ``iterations`` calls, alternating which goes first."""
    times = {"a": [], "b": []}
    for index in range(pairs):
        order = (("a", call_a), ("b", call_b)) if index % 2 == 0 else (("b", call_b), ("a", call_a))
        for name, call in order:
            start = timer()
            for _ in range(iterations):
                call()
            times[name].append((timer() - start) / iterations)
    return PairedRatio(np.array(times["a"]), np.array(times["b"]))
