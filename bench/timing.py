"""The timing harness: one pytest-benchmark worker process per framework, the same protocol for all.

Why separate processes: JAX's and torch's thread pools disturb each other in one process, and
on a GPU JAX would otherwise preallocate memory that torch needs. Each worker gets the same CPU
set (its affinity: XLA sizes its pool from it), the same ``OMP_NUM_THREADS`` and torch thread
count, and the same float32 matmul precision; all are recorded in ``env.json``. The worker
pins its own affinity before it loads a framework (benchmarks/conftest.py).

The timed call itself, with its warm-up, calibration and statistics, is pytest-benchmark's,
in benchmarks/test_gradients.py; the harness adds the processes, the plan and the report.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

from bench.cases import Plan
from impls import REGISTRY

ROOT = Path(__file__).resolve().parent.parent
TIMED_CALLS = ROOT / "benchmarks" / "test_gradients.py"
# pytest-benchmark's own defaults are 5 rounds at least; garbage collection off while timing so
# a collection does not land in one implementation's rounds and not in another's.
_PYTEST_BENCHMARK_ARGS = ["--benchmark-min-rounds=5", "--benchmark-warmup=on",
                          "--benchmark-disable-gc", "--benchmark-save-data",
                          "--benchmark-timer=time.perf_counter"]


def frameworks_of(plan: Plan) -> dict[str, list[str]]:
    """``{framework: [impl, ...]}`` in the plan's order."""
    groups: dict[str, list[str]] = {}
    for name in plan.impls:
        groups.setdefault(REGISTRY[name].framework, []).append(name)
    return groups


def resolve_devices(plan: Plan) -> list[str]:
    """``auto`` becomes the CPU and the GPU (a worker with no GPU records its cases as skipped)."""
    devices: list[str] = []
    for device in plan.devices:
        for concrete in (("cpu", "gpu") if device == "auto" else (device,)):
            if concrete not in devices:
                devices.append(concrete)
    return devices


def thread_counts(plan: Plan) -> list[int]:
    """The thread counts a run times: the plan's, or every usable core."""
    return list(plan.threads) or [len(os.sched_getaffinity(0))]


def probe_gpus(frameworks) -> dict[str, bool]:
    """Which of ``frameworks`` see a GPU, asked in one throwaway process (this one loads neither)."""
    code = ("import json; from impls import runtime; "
            f"print(json.dumps({{f: runtime.gpu_available(f) for f in {list(frameworks)!r}}}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, env=_worker_env({}, threads=1))
    try:
        return json.loads(result.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return {framework: False for framework in frameworks}


def _worker_env(extra: dict, threads: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               XLA_PYTHON_CLIENT_PREALLOCATE="false", PYTHONPATH=str(ROOT), **extra)
    return env


def run_worker(framework: str, impls: list[str], plan: Plan, run_dir: Path, threads: int) -> int:
    """Time one framework's share of ``plan`` on ``threads`` cores.

    Leaves plan-, records-, env-, benchmark- and pytest- files named ``<framework>-t<threads>``.
    """
    cpus = sorted(os.sched_getaffinity(0))[:threads]
    tag = f"{framework}-t{threads}"
    worker_plan = {"frameworks": [framework], "impls": impls, "dtypes": list(plan.dtypes),
                   "devices": resolve_devices(plan), "threads": threads,
                   "matmul_precision": plan.matmul_precision, "cpus": cpus,
                   "paired_seconds": plan.max_time, "steps": plan.steps,
                   "cases": [asdict(case) for case in plan.cases],
                   "records": str(run_dir / f"records-{tag}.jsonl"),
                   "env_out": str(run_dir / f"env-{tag}.json")}
    plan_file = run_dir / f"plan-{tag}.json"
    plan_file.write_text(json.dumps(worker_plan, indent=1))
    command = [sys.executable, "-m", "pytest", str(TIMED_CALLS), "-q", "-p", "no:cacheprovider",
               "--rootdir", str(ROOT), "-o", "addopts=", "-o", "testpaths=",
               f"--benchmark-json={run_dir / f'benchmark-{tag}.json'}",
               f"--benchmark-max-time={plan.max_time}", *_PYTEST_BENCHMARK_ARGS]
    with open(run_dir / f"pytest-{tag}.log", "w") as log:
        completed = subprocess.run(command, cwd=ROOT, stdout=log, stderr=None,
                                   env=_worker_env({"COURIER_PLAN": str(plan_file)}, threads))
    return completed.returncode


def run_diagnostics(out: Path, plan: Plan) -> int:
    """``python -m bench diagnose`` on its default network, in its own process, into ``out``."""
    command = [sys.executable, "-m", "bench", "diagnose", "--output", str(out), "--quiet"]
    with open(out.parent / "diagnose.log", "w") as log:
        return subprocess.run(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                              env=_worker_env({}, max(thread_counts(plan)))).returncode
