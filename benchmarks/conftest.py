"""The worker's set-up: which plan it runs, framework settings, and progress on stderr.

``python -m bench run`` starts one pytest process per framework with ``COURIER_PLAN`` naming
a JSON plan (bench/timing.py writes it). Without it, the quick preset runs: that is the
pytest-benchmark workflow, ``pytest benchmarks/ --benchmark-only``.
"""

from __future__ import annotations

import faulthandler
import json
import os
import sys
import time
from dataclasses import asdict

import pytest

from bench.cases import load_preset
from impls import REGISTRY, load_plugin, runtime


def worker_plan() -> dict:
    path = os.environ.get("COURIER_PLAN")
    if path:
        with open(path) as file:
            return json.load(file)
    plan = load_preset("quick")
    return {"frameworks": sorted({REGISTRY[name].framework for name in plan.impls}),
            "impls": list(plan.impls), "dtypes": list(plan.dtypes), "devices": ["cpu", "gpu"],
            "cases": [asdict(case) for case in plan.cases], "threads": os.cpu_count(),
            "matmul_precision": plan.matmul_precision, "records": None, "env_out": None}


PLAN = worker_plan()
if PLAN.get("crash_log"):
    # A crash's Python traceback goes to the run's log, not over the progress lines.
    faulthandler.enable(open(PLAN["crash_log"], "a"))  # noqa: SIM115 (open for the process's life)
for plugin in PLAN.get("plugins", []):
    load_plugin(plugin)
if PLAN.get("cpus"):
    # Before JAX or torch is loaded: XLA sizes its CPU thread pool from this affinity.
    os.sched_setaffinity(0, PLAN["cpus"])


def pytest_collection_modifyitems(config, items):
    """Leave out what a previous attempt of this worker already recorded (a crash, a resume),
    and the placeholders pytest makes for a test with nothing to run here (no probe for NumPy)."""
    skip = set(PLAN.get("skip", []))
    kept = [item for item in items if not item.name.endswith("[NOTSET]") and (
        getattr(item, "callspec", None) is None or item.callspec.id not in skip)]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[item for item in items if item not in kept])
        items[:] = kept


def pytest_configure(config):
    for framework in PLAN["frameworks"]:
        runtime.configure(framework, threads=PLAN["threads"], matmul_precision=PLAN["matmul_precision"])
    if PLAN.get("env_out"):
        with open(PLAN["env_out"], "w") as file:
            json.dump({framework: runtime_facts(framework) for framework in PLAN["frameworks"]}, file)


def runtime_facts(framework: str) -> dict:
    facts = runtime.runtime_info(framework)
    facts["gpu_available"] = runtime.gpu_available(framework)
    facts["affinity"] = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return facts


class _Progress:
    def __init__(self):
        self.start, self.done, self.total = time.perf_counter(), 0, 0

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items):
        self.total = len(items)

    def pytest_runtest_logstart(self, nodeid):
        self.done += 1
        name = nodeid.split("[", 1)[-1].rstrip("]")
        print(f"  [{'/'.join(PLAN['frameworks'])} {self.done}/{self.total}, "
              f"{time.perf_counter() - self.start:5.1f} s] {name}", file=sys.stderr, flush=True)


def pytest_sessionstart(session):
    if os.environ.get("COURIER_PLAN"):
        session.config.pluginmanager.register(_Progress(), "courier-progress")
