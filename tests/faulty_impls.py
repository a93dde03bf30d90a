"""Implementations that fail on purpose, registered only in tests (``--plugin faulty_impls``).

Each fails one way a real one can: raising, killing its own process (as a segfault or the
kernel's out-of-memory killer would), or hanging past the per-case time limit.
"""

import os
import signal
import time

from impls import Implementation
from impls.contract import Prepared
from impls.numpy_reference import loss_and_grads


def _prepared(run):
    return Prepared(run=run, wait=lambda out: None,
                    to_numpy=lambda out: (float(out[0]), list(out[1])))


def prepare_raises(params, x, y, dtype, device):
    raise RuntimeError("this implementation always fails")


def prepare_crashes(params, x, y, dtype, device):
    return _prepared(lambda: os.kill(os.getpid(), signal.SIGSEGV))


def prepare_hangs(params, x, y, dtype, device):
    return _prepared(lambda: time.sleep(3600))


def prepare_slow(params, x, y, dtype, device):
    """Correct, and slow enough (0.2 s a call) to be interrupted in the middle of a run."""
    def run():
        time.sleep(0.2)
        return loss_and_grads(params, x, y)
    return _prepared(run)


IMPLEMENTATIONS = [
    Implementation("raises", "numpy", "faulty_impls", "raises on every call", entry="prepare_raises"),
    Implementation("crashes", "numpy", "faulty_impls", "kills its own process", entry="prepare_crashes"),
    Implementation("hangs", "numpy", "faulty_impls", "never returns", entry="prepare_hangs"),
    Implementation("slow", "numpy", "faulty_impls", "correct, 0.2 s a call", entry="prepare_slow"),
]
