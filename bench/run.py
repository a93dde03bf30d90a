"""One benchmark run, start to finish: a run directory that appears only when it is complete.

The run is written to ``results/.tmp-<run-id>`` and renamed to ``results/<run-id>`` at the end;
``results/latest`` then points to it. A run that fails half-way leaves no directory behind
under its final name, and ``latest`` keeps pointing to the last complete run.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from bench import report, timing
from bench.cases import Plan


class RunError(Exception):
    """The run cannot start (bad output directory, no GPU where one was asked for)."""


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, cwd=timing.ROOT,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def prepare_output(results_dir: Path) -> None:
    try:
        results_dir.mkdir(parents=True, exist_ok=True)
        probe = results_dir / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise RunError(f"cannot write to output directory {str(results_dir)!r}: "
                       f"{error.strerror or error}") from None


def check_devices(plan: Plan, progress) -> None:
    """Find out which frameworks see a GPU, say so, and refuse ``--device gpu`` without one."""
    if plan.devices == ("cpu",):
        return
    seen = timing.probe_gpus([f for f in timing.frameworks_of(plan) if f != "numpy"])
    if "gpu" in plan.devices:
        for framework, ok in seen.items():
            if not ok:
                raise RunError(f"--device gpu: {framework} sees no GPU on this machine "
                               "(use --device cpu or auto)")
    progress("devices: cpu" + "".join(f"; gpu for {f}: {'yes' if ok else 'none found'}"
                                      for f, ok in seen.items()))


def run(plan: Plan, results_dir: Path, command: str, progress=print,
        diagnostics: bool = True) -> tuple[Path, int]:
    """Time ``plan``, write the reports; return the run directory and the exit code.

    With ``diagnostics``, the run also holds ``diagnostics/``: python -m bench diagnose on its
    default network, linked from the report.
    """
    prepare_output(results_dir)
    check_devices(plan, progress)
    started = datetime.now(timezone.utc)
    run_id = started.strftime("%Y%m%d-%H%M%S") + f"-{plan.preset}"
    staging = results_dir / f".tmp-{run_id}"
    staging.mkdir()
    try:
        env = {"run_id": run_id, "command": command, "started": started.isoformat(timespec="seconds"),
               "preset": plan.preset, "cpu": _cpu_model(), "cores": os.cpu_count(),
               "threads": timing.thread_counts(plan), "steps": plan.steps,
               "matmul_precision": plan.matmul_precision,
               "max_time_s": plan.max_time, "XLA_FLAGS": os.environ.get("XLA_FLAGS", ""),
               "git_commit": _git("rev-parse", "HEAD"), "git_dirty": bool(_git("status", "--porcelain")),
               "platform": platform.platform(), "frameworks": {}}
        worker_codes = {}
        clock = time.perf_counter()
        for threads in timing.thread_counts(plan):
            for framework, impls in timing.frameworks_of(plan).items():
                progress(f"{framework} ({threads} threads): {', '.join(impls)} on {len(plan.cases)} "
                         f"cases ({', '.join(plan.dtypes)}; {', '.join(timing.resolve_devices(plan))})")
                tag = f"{framework}-t{threads}"
                worker_codes[tag] = timing.run_worker(framework, impls, plan, staging, threads)
                facts = staging / f"env-{tag}.json"
                if facts.exists():
                    env["frameworks"][tag] = json.loads(facts.read_text())[framework]
        if diagnostics:
            progress("diagnostics: where the courier's message dies, per init (python -m bench diagnose)")
            env["diagnostics_exit_code"] = timing.run_diagnostics(staging / "diagnostics", plan)
        env["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        env["elapsed_s"] = round(time.perf_counter() - clock, 1)
        env["worker_exit_codes"] = worker_codes
        (staging / "env.json").write_text(json.dumps(env, indent=1))
        results = report.write_report(staging).results
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    final = results_dir / run_id
    staging.rename(final)
    latest = results_dir / "latest"
    if latest.is_symlink() or latest.exists():
        latest.unlink()
    latest.symlink_to(run_id)

    broken = {f: code for f, code in worker_codes.items() if code not in (0, 1)}
    if broken:
        progress(f"worker processes exited abnormally: {broken} (see pytest-*.log in {final})")
    code = exit_code(results, worker_codes)
    return final, 1 if env.get("diagnostics_exit_code", 0) != 0 else code


def exit_code(results, worker_codes: dict[str, int]) -> int:
    """0 only when every benchmark that ran agreed, none failed, and every worker ended normally.

    pytest exits 1 when a test fails, which the records already hold; any other non-zero code
    means a worker broke (a crash, a usage error), and the run fails with it. A run with nothing
    timed at all fails too.
    """
    skipped = results["error"].str.startswith("skipped")
    ran = results[~skipped]
    if ran.empty or any(code not in (0, 1) for code in worker_codes.values()):
        return 1
    return 0 if bool((ran["error"] == "").all() and ran["agrees"].eq(True).all()) else 1
