"""One benchmark run, start to finish: a run directory that appears only when it is complete.

The run is written to ``results/.tmp-<run-id>`` and renamed to ``results/<run-id>`` at the end;
``results/latest`` then points to it. A run that fails half-way leaves no directory behind
under its final name, and ``latest`` keeps pointing to the last complete run. A run that is
interrupted (Ctrl-C, SIGTERM) stops its workers, and what had finished is moved to
``results/.partial-<run-id>``, which no reader takes for a run and ``--resume`` continues.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import time
from dataclasses import asdict
from datetime import UTC, datetime
from itertools import product
from pathlib import Path

from bench import memory, report, timing
from bench.cases import Plan, benchmark_name, case_id, matmul_flops


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


def check_devices(plan: Plan, progress) -> dict[str, int | None]:
    """Find out which frameworks see a GPU, say so, and refuse ``--device gpu`` without one.

    Returns free GPU bytes per framework (None: no GPU seen).
    """
    if plan.devices == ("cpu",):
        return {}
    seen = timing.probe_gpus([f for f in timing.frameworks_of(plan) if f != "numpy"])
    if "gpu" in plan.devices:
        for framework, free in seen.items():
            if free is None:
                raise RunError(f"--device gpu: {framework} sees no GPU on this machine "
                               "(use --device cpu or auto)")
    progress("devices: cpu" + "".join(f"; gpu for {f}: {'none found' if free is None else 'yes'}"
                                      for f, free in seen.items()))
    return seen


def refuse_oversized(plan: Plan, staging: Path, gpu_free: dict, progress) -> int:
    """Record every benchmark whose case cannot fit in memory as refused; return how many.

    Workers skip what is recorded, so nothing of a refused case is ever allocated.
    """
    cpu_free = memory.available_cpu_bytes()
    refused = 0
    for case, dtype, device in product(plan.cases, plan.dtypes, timing.resolve_devices(plan)):
        reasons = set()
        for threads, (framework, impls) in product(timing.thread_counts(plan),
                                                   timing.frameworks_of(plan).items()):
            free = cpu_free if device == "cpu" else gpu_free.get(framework)
            why = memory.refusal(case, dtype, plan.steps, free)
            if not why:
                continue
            reasons.add(why)
            with open(staging / f"records-{framework}-t{threads}.jsonl", "a") as file:
                for impl in impls:
                    refused += 1
                    file.write(json.dumps({
                        "name": benchmark_name(impl, case, dtype, device, threads),
                        "impl": impl, "framework": framework, "case": case_id(case),
                        "sizes": ",".join(map(str, case.sizes)), "batch": case.batch,
                        "n_params": case.n_params, "flops": matmul_flops(case), "dtype": dtype,
                        "device": device, "threads": threads, "steps": plan.steps,
                        "error": why}) + "\n")
        for why in sorted(reasons):
            progress(f"{case_id(case)} {dtype} {device}: {why}")
    return refused


class RunInterrupted(Exception):
    """Ctrl-C or SIGTERM during a run: the message says what was running and what was kept."""


def _running_now(staging: Path) -> str:
    currents = sorted(staging.glob("current-*.json"), key=lambda p: p.stat().st_mtime)
    return json.loads(currents[-1].read_text())["name"] if currents else "the set-up"


def run(plan: Plan, results_dir: Path, command: str, progress=print,
        diagnostics: bool = True, resume: Path | None = None) -> tuple[Path, int]:
    """Time ``plan``, write the reports; return the run directory and the exit code.

    With ``diagnostics``, the run also holds ``diagnostics/``: python -m bench diagnose on its
    default network, linked from the report. With ``resume``, the interrupted run kept in that
    ``.partial-<run-id>`` folder goes on where it stopped: its plan, its run id, its records.
    """
    prepare_output(results_dir)
    if resume is not None:
        saved = json.loads((resume / "run.json").read_text())
        plan, run_id, started = plan_from_json(saved["plan"]), saved["run_id"], saved["started"]
        command = saved["command"] + f"  (resumed: {command})"
    else:
        run_id = datetime.now(UTC).strftime("%Y%m%d-%H%M%S") + f"-{plan.preset}"
        started = datetime.now(UTC).isoformat(timespec="seconds")
    gpu_free = check_devices(plan, progress)
    staging = results_dir / f".tmp-{run_id}"
    if resume is not None:
        resume.rename(staging)
    else:
        staging.mkdir()
        (staging / "run.json").write_text(json.dumps(
            {"run_id": run_id, "started": started, "command": command, "plan": asdict(plan)}))
    try:
        env = {"run_id": run_id, "command": command, "started": started,
               "preset": plan.preset, "cpu": _cpu_model(), "cores": os.cpu_count(),
               "threads": timing.thread_counts(plan), "steps": plan.steps,
               "matmul_precision": plan.matmul_precision,
               "max_time_s": plan.max_time, "XLA_FLAGS": os.environ.get("XLA_FLAGS", ""),
               "git_commit": _git("rev-parse", "HEAD"), "git_dirty": bool(_git("status", "--porcelain")),
               "platform": platform.platform(), "seed_and_inputs": inputs_checksums(plan),
               "frameworks": {}}
        if resume is None:
            refuse_oversized(plan, staging, gpu_free, progress)
        worker_codes = {}
        clock = time.perf_counter()
        for threads in timing.thread_counts(plan):
            for framework, impls in timing.frameworks_of(plan).items():
                progress(f"{framework} ({threads} threads): {', '.join(impls)} on {len(plan.cases)} "
                         f"cases ({', '.join(plan.dtypes)}; {', '.join(timing.resolve_devices(plan))})")
                tag = f"{framework}-t{threads}"
                worker_codes[tag] = timing.run_worker(framework, impls, plan, staging, threads,
                                                      progress)
                facts = staging / f"env-{tag}.json"
                if facts.exists():
                    env["frameworks"][tag] = json.loads(facts.read_text())[framework]
        if diagnostics:
            progress("diagnostics: where the courier's message dies, per init (python -m bench diagnose)")
            env["diagnostics_exit_code"] = timing.run_diagnostics(staging / "diagnostics", plan)
        env["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
        env["elapsed_s"] = round(time.perf_counter() - clock, 1)
        env["worker_exit_codes"] = worker_codes
        (staging / "env.json").write_text(json.dumps(env, indent=1))
        results = report.write_report(staging).results
    except KeyboardInterrupt:
        running = _running_now(staging)
        for leftover in staging.glob("current-*.json"):
            leftover.unlink()
        partial = results_dir / f".partial-{run_id}"
        staging.rename(partial)
        raise RunInterrupted(
            f"interrupted during {running}; the workers were stopped; no run was written and "
            f"{results_dir / 'latest'} is unchanged. What finished is kept in {partial}: "
            f"python -m bench run --resume {partial} goes on from there") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    for leftover in staging.glob("current-*.json"):
        leftover.unlink()
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


def plan_from_json(saved: dict) -> Plan:
    """The :class:`Plan` that ``asdict`` wrote to run.json."""
    from impls import Problem

    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in saved.items() if k != "cases"}
    cases = tuple(Problem(**{**case, "sizes": tuple(case["sizes"])}) for case in saved["cases"])
    return Plan(cases=cases, **fields)


def inputs_checksums(plan: Plan) -> dict:
    """Per case: its seed and the sha256 of its float64 inputs (params, x, y), as every
    framework receives them before its own conversion."""
    import hashlib

    from impls import make_inputs

    sums = {}
    for case in plan.cases:
        if memory.refusal(case, "float64", 1, memory.available_cpu_bytes()):
            continue  # too large to make here; refused anyway
        params, x, y = make_inputs(case)
        digest = hashlib.sha256()
        for array in [a for pair in params for a in pair] + [x, y]:
            digest.update(array.tobytes())
        sums[case_id(case)] = {"seed": case.seed, "sha256": digest.hexdigest()}
    return sums


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
