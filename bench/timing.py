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

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
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


def probe_gpus(frameworks) -> dict[str, int | None]:
    """Per framework: free bytes on the GPU it sees, or None when it sees none.

    Asked in one throwaway process, so that this one loads neither framework.
    """
    code = ("import json; from impls import runtime; "
            f"print(json.dumps({{f: (runtime.gpu_free_bytes(f) or 0) if runtime.gpu_available(f) "
            f"else None for f in {list(frameworks)!r}}}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, env=_worker_env({}, threads=1), check=False)
    try:
        return json.loads(result.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return {framework: None for framework in frameworks}


def _worker_env(extra: dict, threads: int) -> dict:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
                XLA_PYTHON_CLIENT_PREALLOCATE="false", PYTHONPATH=path, **extra)


def recorded_names(records: Path) -> set[str]:
    """Names of the benchmarks a records file holds: done, failed or skipped."""
    if not records.exists():
        return set()
    return {json.loads(line)["name"] for line in records.read_text().splitlines() if line.strip()}


def run_worker(framework: str, impls: list[str], plan: Plan, run_dir: Path, threads: int,
               progress=print) -> int:
    """Time one framework's share of ``plan`` on ``threads`` cores; return its exit code.

    Leaves plan-, records-, env-, benchmark- and pytest- files named ``<framework>-t<threads>``.
    A benchmark that crashes its worker (a segfault, the kernel's out-of-memory killer) or runs
    past ``plan.case_timeout`` is recorded as failed with the reason, and a new worker carries
    on with the benchmarks not yet recorded. Benchmarks already recorded (by an earlier attempt,
    or the interrupted run being resumed) are never run again.
    """
    cpus = sorted(os.sched_getaffinity(0))[:threads]
    tag = f"{framework}-t{threads}"
    records, current = run_dir / f"records-{tag}.jsonl", run_dir / f"current-{tag}.json"
    worker_plan = {"frameworks": [framework], "impls": impls, "dtypes": list(plan.dtypes),
                   "devices": resolve_devices(plan), "threads": threads,
                   "matmul_precision": plan.matmul_precision, "cpus": cpus,
                   "paired_seconds": plan.max_time, "steps": plan.steps,
                   "plugins": list(plan.plugins),
                   "cases": [asdict(case) for case in plan.cases],
                   "records": str(records), "current": str(current),
                   "crash_log": str(run_dir / f"crash-{tag}.log"),
                   "env_out": str(run_dir / f"env-{tag}.json")}
    plan_file = run_dir / f"plan-{tag}.json"
    while True:
        worker_plan["skip"] = sorted(recorded_names(records))
        plan_file.write_text(json.dumps(worker_plan, indent=1))
        current.unlink(missing_ok=True)
        attempt = len(list(run_dir.glob(f"benchmark-{tag}-*.json"))) + 1
        command = [sys.executable, "-m", "pytest", str(TIMED_CALLS), "-q", "-p", "no:cacheprovider",
                   "-p", "no:faulthandler", "--rootdir", str(ROOT), "-o", "addopts=", "-o", "testpaths=",
                   f"--benchmark-json={run_dir / f'benchmark-{tag}-{attempt}.json'}",
                   f"--benchmark-max-time={plan.max_time}", *_PYTEST_BENCHMARK_ARGS]
        code, reason = _supervise(command, run_dir / f"pytest-{tag}.log", current,
                                  _worker_env({"COURIER_PLAN": str(plan_file)}, threads),
                                  plan.case_timeout)
        if reason is None:
            return code
        failed = json.loads(current.read_text()) if current.exists() else None
        if failed is None or failed["name"] in recorded_names(records):
            progress(f"  {tag} worker {reason} outside any benchmark; its remaining benchmarks "
                     "are not run")
            return code
        failed["error"] = f"{reason} (worker exit code {code})"
        if reason.startswith("crashed"):
            failed["error"] = f"{reason} (worker exit code {code}; traceback in crash-{tag}.log)"
        with open(records, "a") as file:
            file.write(json.dumps(failed) + "\n")
        progress(f"  {failed['name']}: {failed['error']}; a new worker goes on with the rest")


def _supervise(command, log_path: Path, current: Path, env: dict, case_timeout: float):
    """Run one worker; ``(exit code, None)`` when it ends by itself, or ``(code, reason)``.

    The worker runs in a session of its own, so that it and everything it started can be killed
    together: when its current benchmark outlasts ``case_timeout``, and when this process is
    interrupted (Ctrl-C, SIGTERM), which then propagates.
    """
    with open(log_path, "a") as log:
        worker = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=None, env=env,
                                  start_new_session=True)
        try:
            stamp, started_at = None, time.monotonic()
            while worker.poll() is None:
                time.sleep(0.2)
                now = current.stat().st_mtime_ns if current.exists() else None
                if now != stamp:  # a new benchmark has started: its clock starts
                    stamp, started_at = now, time.monotonic()
                elif now is not None and time.monotonic() - started_at > case_timeout:
                    _kill(worker)
                    return worker.returncode, f"timed out after {case_timeout:g} s"
        finally:
            if worker.poll() is None:
                _kill(worker)
    code = worker.returncode
    if code in (0, 1):  # all passed, or some tests failed (their records say why)
        return code, None
    if code < 0:
        return code, f"crashed: killed by {signal.Signals(-code).name}"
    return code, f"crashed: exit code {code}"


def _kill(worker: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()


def run_diagnostics(out: Path, plan: Plan) -> int:
    """``python -m bench diagnose`` on its default network, in its own process, into ``out``."""
    command = [sys.executable, "-m", "bench", "diagnose", "--output", str(out), "--quiet"]
    with open(out.parent / "diagnose.log", "w") as log:
        return subprocess.run(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, check=False,
                              env=_worker_env({}, max(thread_counts(plan)))).returncode
