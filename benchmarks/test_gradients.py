"""The timed calls: every implementation x case x dtype x device of a plan, through pytest-benchmark.

Each benchmark first converts the inputs and places them on the device (never timed), then
times the first call on its own (``compile_s``: JAX traces and compiles, torch runs its first
eager call), checks the result against the float64 oracle (bench/agreement.py), and only then
lets pytest-benchmark calibrate, warm up and time ``wait(run())``: the pure call plus the wait
for every output array (JAX: block until ready; CUDA: synchronise).

    pytest benchmarks/ --benchmark-only                  # the quick preset, as pytest-benchmark users know it
    python -m bench run                                  # the harness: one process per framework
"""

from __future__ import annotations

import json
import time
import traceback

import pytest
from conftest import PLAN

from bench.agreement import compare, input_overflow, make_reference, nonfinite_summary
from bench.cases import benchmark_name, case_id, matmul_flops, stepped_inputs
from bench.paired import plan_pairs, time_pairs
from impls import REGISTRY, DeviceUnavailable, Problem, make_inputs, runtime
from impls.network import format_sizes

CASES = [Problem(**{**case, "sizes": tuple(case["sizes"])}) for case in PLAN["cases"]]
MATRIX = [(case, dtype, device, impl) for case in CASES for dtype in PLAN["dtypes"]
          for device in PLAN["devices"] for impl in PLAN["impls"]]
# The compute ceiling's matrix size per device: large enough to reach the machine's peak rate,
# small enough to time many rounds (2 n^3 flops: 2.1 GFLOP on a CPU, 1.1 TFLOP on a GPU).
CEILING_N = {"cpu": 1024, "gpu": 8192}
PROBES = [(framework, device) for framework in PLAN["frameworks"] if framework in ("jax", "torch")
          for device in PLAN["devices"]]
PAIRED = ("jax_manual", "jax_autodiff")
PAIRS = [(case, dtype, device) for case in CASES for dtype in PLAN["dtypes"]
         for device in PLAN["devices"]] if set(PAIRED) <= set(PLAN["impls"]) else []


def _id(entry) -> str:
    case, dtype, device, impl = entry
    return benchmark_name(impl, case, dtype, device, PLAN["threads"])


def _record(record: dict) -> None:
    """Append the benchmark's record (with pytest-benchmark's statistics and raw rounds) at once,
    so that a run interrupted or crashed later keeps it."""
    if PLAN.get("records"):
        with open(PLAN["records"], "a") as file:
            file.write(json.dumps(record) + "\n")


def _time(benchmark, prepared, record: dict) -> None:
    """pytest-benchmark times ``wait(run())``; its statistics and raw rounds join the record."""
    benchmark.extra_info.update({k: v for k, v in record.items() if k != "agreement"})
    benchmark(lambda: prepared.wait(prepared.run()))
    record["stats"] = benchmark.stats.as_dict(include_data=True)["stats"]


def _skip(record: dict, error: DeviceUnavailable) -> None:
    record["error"] = f"skipped: {error}"
    _record(record)
    pytest.skip(str(error))


def _started(record: dict) -> None:
    """Tell the harness what is running: if this process dies, it records the failure for us."""
    if PLAN.get("current"):
        with open(PLAN["current"], "w") as file:
            json.dump(record, file)


@pytest.mark.parametrize("entry", MATRIX, ids=[_id(entry) for entry in MATRIX])
def test_gradient(benchmark, entry):
    case, dtype, device, impl = entry
    benchmark.group = f"{case_id(case)} {dtype} {device}"
    steps = PLAN.get("steps", 1)
    record = {"name": _id(entry), "impl": impl, "framework": REGISTRY[impl].framework,
              "case": case_id(case), "sizes": format_sizes(case.sizes), "batch": case.batch,
              "init": case.init, "scale": case.scale, "n_params": case.n_params,
              "flops": matmul_flops(case), "dtype": dtype, "device": device,
              "threads": PLAN["threads"], "steps": steps, "error": ""}
    _started(record)
    try:
        params, x, y = make_inputs(case)
        prepared = REGISTRY[impl].prepare(params, x, y, dtype=dtype, device=device)
        start = time.perf_counter()
        out = prepared.run()
        prepared.wait(out)
        record["compile_s"] = time.perf_counter() - start
        table = compare(prepared.to_numpy(out), make_reference(params, x, y, dtype))
        record.update(agrees=bool(table["agrees"].all()),
                      max_abs_err=float(table["max_abs_err"].max()),
                      norm_rel_err=float(table["norm_rel_err"].max()),
                      err_ratio=float(table["err_ratio"].max()),
                      numerics="; ".join(filter(None, [input_overflow(params, x, y, dtype),
                                                       nonfinite_summary(table)])),
                      agreement=table.to_dict(orient="records"))
        if steps > 1:  # the same implementation, K evaluations per call; its first call untimed
            prepared = REGISTRY[impl].prepare(*stepped_inputs(case, steps), dtype=dtype,
                                              device=device, steps=steps)
            start = time.perf_counter()
            prepared.wait(prepared.run())
            record["compile_s"] = time.perf_counter() - start
        _time(benchmark, prepared, record)
    except DeviceUnavailable as error:
        _skip(record, error)
    except Exception as error:
        record["error"] = f"{type(error).__name__}: {error}"
        record["traceback"] = traceback.format_exc()
        _record(record)
        raise
    _record(record)
    assert record["agrees"], f"{impl} disagrees with the oracle on {case_id(case)} {dtype}"


def _probe_id(kind, framework, device) -> str:
    return f"{kind}-{framework}-{device}-t{PLAN['threads']}"


def _probe(benchmark, kind, framework, device, make, flops):
    record = {"name": _probe_id(kind, framework, device), "kind": kind,
              "framework": framework, "device": device, "threads": PLAN["threads"], "flops": flops,
              "error": ""}
    _started(record)
    benchmark.group = f"machine {device}"
    try:
        prepared = make()
        prepared.wait(prepared.run())  # compile and warm, outside the timing
        _time(benchmark, prepared, record)
    except DeviceUnavailable as error:
        _skip(record, error)
    _record(record)


@pytest.mark.parametrize("framework, device", PROBES,
                         ids=[_probe_id("ceiling", f, d) for f, d in PROBES])
def test_ceiling(benchmark, framework, device):
    """The compute ceiling: a float32 (n, n) @ (n, n) product."""
    n = CEILING_N[device]
    _probe(benchmark, "ceiling", framework, device,
           lambda: runtime.ceiling_probe(framework, device, n), 2 * n ** 3)


@pytest.mark.parametrize("framework, device", PROBES,
                         ids=[_probe_id("floor", f, d) for f, d in PROBES])
def test_floor(benchmark, framework, device):
    """The dispatch floor: the framework's cheapest call that dispatches and waits."""
    _probe(benchmark, "floor", framework, device, lambda: runtime.floor_probe(framework, device), 0)


def _paired_id(entry) -> str:
    case, dtype, device = entry
    return f"paired-{case_id(case)}-{dtype}-{device}-t{PLAN['threads']}"


@pytest.mark.parametrize("entry", PAIRS, ids=[_paired_id(entry) for entry in PAIRS])
def test_paired_manual_vs_autodiff(entry):
    """jax_manual against jax_autodiff in interleaved pairs (bench/paired.py): their time ratio."""
    case, dtype, device = entry
    record = {"name": _paired_id(entry), "kind": "paired", "threads": PLAN["threads"],
              "a": PAIRED[0], "b": PAIRED[1], "case": case_id(case), "sizes": format_sizes(case.sizes),
              "batch": case.batch, "dtype": dtype, "device": device, "error": ""}
    _started(record)
    try:
        params, x, y = make_inputs(case)
        a, b = (REGISTRY[name].prepare(params, x, y, dtype=dtype, device=device) for name in PAIRED)
    except DeviceUnavailable as error:
        _skip(record, error)
    call_a, call_b = (lambda: a.wait(a.run())), (lambda: b.wait(b.run()))
    for _ in range(3):  # compile and warm both
        call_a(), call_b()
    start = time.perf_counter()
    call_b()
    pairs, iterations = plan_pairs(time.perf_counter() - start, PLAN.get("paired_seconds", 1.0))
    result = time_pairs(call_a, call_b, pairs, iterations)
    record.update(median_ratio=result.median, q1=result.q1, q3=result.q3, pairs=pairs,
                  iterations=iterations, a_s=result.a.tolist(), b_s=result.b.tolist())
    _record(record)
