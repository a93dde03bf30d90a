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

from bench.agreement import compare, make_reference
from bench.cases import case_id, matmul_flops
from impls import REGISTRY, DeviceUnavailable, Problem, make_inputs
from impls.network import format_sizes

CASES = [Problem(**{**case, "sizes": tuple(case["sizes"])}) for case in PLAN["cases"]]
MATRIX = [(case, dtype, device, impl) for case in CASES for dtype in PLAN["dtypes"]
          for device in PLAN["devices"] for impl in PLAN["impls"]]


def _id(entry) -> str:
    case, dtype, device, impl = entry
    return f"{impl}-{case_id(case)}-{dtype}-{device}"


def _record(record: dict) -> None:
    if PLAN.get("records"):
        with open(PLAN["records"], "a") as file:
            file.write(json.dumps(record) + "\n")


@pytest.mark.parametrize("entry", MATRIX, ids=[_id(entry) for entry in MATRIX])
def test_gradient(benchmark, entry):
    case, dtype, device, impl = entry
    benchmark.group = f"{case_id(case)} {dtype} {device}"
    record = {"name": _id(entry), "impl": impl, "framework": REGISTRY[impl].framework,
              "case": case_id(case), "sizes": format_sizes(case.sizes), "batch": case.batch,
              "init": case.init, "scale": case.scale, "n_params": case.n_params,
              "flops": matmul_flops(case), "dtype": dtype, "device": device, "error": ""}
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
                      agreement=table.to_dict(orient="records"))
        benchmark.extra_info.update({k: v for k, v in record.items() if k != "agreement"})
        benchmark(lambda: prepared.wait(prepared.run()))
    except DeviceUnavailable as error:
        record["error"] = f"skipped: {error}"
        _record(record)
        pytest.skip(str(error))
    except Exception as error:
        record["error"] = f"{type(error).__name__}: {error}"
        record["traceback"] = traceback.format_exc()
        _record(record)
        raise
    _record(record)
    assert record["agrees"], f"{impl} disagrees with the oracle on {case_id(case)} {dtype}"
